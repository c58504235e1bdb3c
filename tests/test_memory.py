import math

import pytest
import torch

from solo_ossl.memory import build_memory as ReplayMemory
from solo_ossl.utils.errors import SoloOsslError


def stream(n, batch=8):
    for start in range(0, n, batch):
        yield torch.arange(start, min(n, start + batch))


def test_size_is_capped_and_counts_seen():
    memory = ReplayMemory(20, seed=1)
    for x in stream(100):
        memory.add(x)
        assert len(memory) <= 20
    assert len(memory) == 20 and memory.num_seen == 100
    stored, _ = memory.sample(20)
    assert len(set(stored.tolist())) == 20  # no duplicates from within-batch slot collisions


@pytest.mark.parametrize("capacity,length,batch", [(1, 4, 1), (3, 12, 4)], ids=["one slot", "batched"])
def test_reservoir_inclusion_is_capacity_over_stream_length_for_every_sample(capacity, length, batch):
    # Vitter's algorithm R: after a stream of n samples each is in a memory of C with probability exactly C / n. An
    # off-by-one in the draw (j in [0, i) instead of [0, i]) would keep the last sample of the one-slot case with
    # probability 1/3 instead of 1/4, 10 standard deviations away at 3000 trials.
    trials = 3000
    counts = torch.zeros(length)
    for seed in range(trials):
        memory = ReplayMemory(capacity, seed=seed)
        for x in stream(length, batch=batch):
            memory.add(x)
        counts[memory.data[: len(memory)]] += 1  # the stored samples themselves, not a draw of them
    p = capacity / length
    bound = 4.5 * math.sqrt(p * (1 - p) / trials)  # binomial standard deviation of each sample's frequency
    assert ((counts / trials - p).abs() <= bound).all(), counts / trials


def test_random_policy_always_stores_the_newest():
    # Every new sample takes a slot; two of one batch may draw the same slot, and then the later one stays.
    memory = ReplayMemory(10, policy="random", seed=0)
    for x in stream(50, batch=5):
        memory.add(x)
        assert x[-1].item() in memory.sample(10)[0].tolist()
    assert len(memory) == 10


def test_state_dict_round_trip_resumes_the_same_sequence():
    a = ReplayMemory(16, seed=3)
    for x in stream(40):
        a.add(x, x % 5)
    b = ReplayMemory(16, seed=99)
    b.load_state_dict(a.state_dict())
    for x in stream(24):
        a.add(x + 1000)
        b.add(x + 1000)
        xa, ya = a.sample(8)
        xb, yb = b.sample(8)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_stores_uint8_images_and_labels():
    memory = ReplayMemory(4, seed=0)
    images = torch.randint(0, 255, (3, 3, 8, 8), dtype=torch.uint8)
    memory.add(images, torch.tensor([7, 8, 9]))
    x, y = memory.sample(3)
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 8, 8)
    assert sorted(y.tolist()) == [7, 8, 9]


def test_bad_input():
    with pytest.raises(SoloOsslError, match="capacity"):
        ReplayMemory(0)
    with pytest.raises(SoloOsslError, match="policy"):
        ReplayMemory(4, policy="lru")
    with pytest.raises(SoloOsslError, match="not float"):
        ReplayMemory(4).add(torch.rand(2, 3, 8, 8))


def test_fifo_keeps_the_newest():
    memory = ReplayMemory(10, policy="fifo", seed=0)
    for x in stream(57, batch=8):
        memory.add(x)
    assert sorted(memory.sample(10)[0].tolist()) == list(range(47, 57))
    memory.add(torch.arange(100, 125))  # a batch larger than the memory: its newest 10 stay
    assert sorted(memory.sample(10)[0].tolist()) == list(range(115, 125))


def near_copies(generator: torch.Generator, distinct: int = 5, copies: int = 10, dim: int = 16) -> torch.Tensor:
    """``distinct`` random unit vectors, each followed by ``copies`` - 1 near-copies (noise 1e-3), one after another."""
    base = torch.nn.functional.normalize(torch.randn(distinct, dim, generator=generator), dim=1)
    noise = 1e-3 * torch.randn(distinct, copies, dim, generator=generator)
    return (base[:, None] + noise).reshape(distinct * copies, dim)


@pytest.mark.parametrize("batch", [1, 3, 10])
def test_minred_keeps_one_of_each_distinct_sample(batch):
    generator = torch.Generator().manual_seed(batch)
    vectors = near_copies(generator)
    memory = ReplayMemory(5, policy="minred", seed=0)
    for x in stream(len(vectors), batch=batch):  # samples are indices into the vectors
        memory.add(x, features=lambda idx: vectors[idx])
    kept = memory.sample(5)[0]
    assert sorted((kept // 10).tolist()) == [0, 1, 2, 3, 4]  # one near-copy of each of the five vectors


def naive_most_redundant(features: torch.Tensor, count: int) -> list[int]:
    """The original's loop (continuous_ssl_problem, datasets/mysampler.py, max_coverage_reduction): every row's
    nearest-neighbour similarity recomputed at each removal."""
    sim = (features @ features.T + 1) / 2
    sim.fill_diagonal_(-10.0)
    removed = []
    for _ in range(count):
        row = int(torch.argmax(sim.max(dim=1)[0]))
        removed.append(row)
        sim.index_fill_(0, torch.tensor([row]), -10.0)
        sim.index_fill_(1, torch.tensor([row]), -10.0)
    return removed


def test_minred_removal_equals_the_original_loop_ties_included():
    from solo_ossl.memory import most_redundant

    generator = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(200, 8, generator=generator), dim=1)
    assert most_redundant(features.clone(), 60) == naive_most_redundant(features.clone(), 60)
    tied = torch.nn.functional.normalize(torch.randn(4, 8, generator=generator), dim=1).repeat(5, 1)  # exact copies
    assert most_redundant(tied.clone(), 15) == naive_most_redundant(tied.clone(), 15)


def test_minred_refreshes_features_by_polyak_average_and_round_trips():
    memory = ReplayMemory(4, policy="minred", seed=0)
    table = torch.nn.functional.normalize(torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), dim=1)
    memory.add(torch.arange(4), features=lambda idx: table[idx])
    slots = memory.sample_slots(2)
    new = torch.randn(2, 6)
    expected = torch.nn.functional.normalize(
        0.5 * memory.features[slots] + 0.5 * torch.nn.functional.normalize(new, dim=1), dim=1
    )
    memory.observe(slots, new)
    torch.testing.assert_close(memory.features[slots], expected)
    other = ReplayMemory(4, policy="minred", seed=7)
    other.load_state_dict(memory.state_dict())
    assert torch.equal(other.features, memory.features) and torch.equal(other.inserted, memory.inserted)
    memory.add(torch.arange(4, 8), features=lambda idx: table[idx])
    other.add(torch.arange(4, 8), features=lambda idx: table[idx])
    assert torch.equal(memory.data, other.data) and torch.equal(memory.features, other.features)
    with pytest.raises(SoloOsslError, match="needs the samples' features"):
        memory.add(torch.arange(2))


def test_an_online_run_with_minred_resumes_bitwise_with_its_features(tiny_config, tmp_path):
    from solo_ossl.run.pretrain import run_pretrain

    from .test_online import HALF, ONLINE

    common = [*ONLINE, HALF, "++online.memory.policy=minred", "++online.memory.capacity=24", "++online.k=24"]
    full = torch.load(
        run_pretrain(tiny_config("online/embedded/simclr_rals", *common, "++name=full")), weights_only=False
    )
    memory = full["online"]["memory"]
    assert memory["policy"] == "minred" and memory["features"].shape[0] == memory["size"] == 24
    middle = tmp_path / "full" / "checkpoints" / "task3.ckpt"
    assert torch.load(middle, weights_only=False)["online"]["memory"]["features"] is not None
    resumed = torch.load(
        run_pretrain(tiny_config("online/embedded/simclr_rals", *common, "++name=resumed", f"++resume={middle}")),
        weights_only=False,
    )
    assert torch.equal(resumed["online"]["memory"]["features"], memory["features"])
    assert torch.equal(resumed["online"]["memory"]["data"], memory["data"])
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
