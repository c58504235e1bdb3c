import pytest
import torch

from solo_ossl.online import ReplayMemory
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


def test_reservoir_inclusion_is_uniform_over_the_stream():
    # Each of 200 stream samples should end in a memory of 20 with probability 0.1.
    counts = torch.zeros(200)
    trials = 600
    for seed in range(trials):
        memory = ReplayMemory(20, seed=seed)
        for x in stream(200, batch=16):
            memory.add(x)
        counts[memory.sample(20)[0]] += 1
    freq = counts / trials
    assert abs(freq.mean().item() - 0.1) < 1e-6
    # Binomial std for p=0.1, n=600 is 0.012; early and late halves must agree, no sample far off.
    assert abs(freq[:100].mean() - freq[100:].mean()) < 0.01
    assert (freq - 0.1).abs().max() < 0.06


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
        ReplayMemory(4, policy="fifo")
    with pytest.raises(SoloOsslError, match="not float"):
        ReplayMemory(4).add(torch.rand(2, 3, 8, 8))
