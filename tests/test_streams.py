"""Streams from where data lives (issue 43): WebDataset shards stream the batches the dataset streams, split over
processes and resumed exactly (a run killed with SIGKILL continues to the uninterrupted run's weights); a live folder
trains every file once across a SIGKILL; blurry task boundaries; the live queue's policies."""

import collections
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.args import load_config
from solo_ossl.data import build_datasets, task_sample_indices
from solo_ossl.data.datasets import ArrayDataset
from solo_ossl.data.live import LiveQueue
from solo_ossl.data.shards import ShardBatches, index_shards
from solo_ossl.online.stream import StreamBatchSampler, stream_order, stream_segments
from solo_ossl.run.bare import bare_online_run
from solo_ossl.run.common import class_split
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.run.shards import write_dataset_shards
from solo_ossl.run.streams import StreamSource
from solo_ossl.utils.errors import SoloOsslError

from .conftest import ROOT, TINY, run_script

EMBEDDED_TINY = [o for o in TINY if not o.startswith("++data.synthetic")] + ["++data.dataset=embedded"]
# Task 2 of the embedded data (400 images) in stream batches of 32, three local steps each.
STREAM = [
    "++data.last_task=2",
    "++online.stream_batch_size=32",
    "++online.steps_per_batch=3",
    "++online.memory.capacity=64",
    "++eval.every=0",
]


class Batches(Callback):
    """The images and labels of every stream batch trained."""

    def __init__(self) -> None:
        self.images, self.targets = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.images.append(batch[1].clone())
        self.targets.append(batch[2].clone())


def weights(path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    """Task 2 of the embedded data written as shards of 100 samples, in the stream order of ``STREAM``'s config."""
    out = tmp_path_factory.mktemp("shards")
    cfg = load_config(["--config-name", "online/embedded/simclr", *EMBEDDED_TINY, *STREAM])
    return write_dataset_shards(cfg, out, samples_per_shard=100)


def shard_args(pattern: str) -> list[str]:
    return ["++data.dataset=webdataset", f"++data.data_dir='{pattern}'"]


def test_shards_stream_the_datasets_batches_and_train_to_the_same_weights(tiny_config, shards):
    runs = {}
    for name, data in (("dataset", []), ("shards", shard_args(shards))):
        recorder = Batches()
        cfg = tiny_config("online/embedded/simclr", *EMBEDDED_TINY, *STREAM, *data, f"++name={name}")
        runs[name] = (recorder, weights(run_pretrain(cfg, [recorder])))
    (a, wa), (b, wb) = runs["dataset"], runs["shards"]
    assert len(a.images) == len(b.images) == 13  # 400 samples in batches of 32
    for x, y in zip(a.images + a.targets, b.images + b.targets, strict=True):
        assert torch.equal(x, y)
    assert_same_weights(wa, wb)


def test_shard_batches_split_over_processes_and_workers_as_the_sampler_does(shards):
    from torch.utils.data import DataLoader

    index = index_shards(shards)
    assert index.counts == [100] * 4 and index.task_ends == [(2, 400)]
    positions = torch.arange(400)
    for world in (1, 2, 3):
        for start in (0, 5):
            expected = [list(StreamBatchSampler(positions, 32, start, rank, world)) for rank in range(world)]
            for rank in range(world):
                got = ShardBatches(index, 32, 400, start, 13, rank, world)
                assert [b[0].tolist() for b in got] == expected[rank]
    # Two workers take the stream batches in turn; the loader returns them in stream order.
    loader = DataLoader(ShardBatches(index, 32, 400, 3, 13), batch_size=None, num_workers=2)
    assert [b[0].tolist() for b in loader] == [list(range(32 * i, min(32 * i + 32, 400))) for i in range(3, 13)]


def test_shards_without_their_index_are_counted(shards, tmp_path):
    import shutil

    for tar in Path(shards.split("train-")[0]).glob("*.tar"):
        shutil.copy(tar, tmp_path / tar.name)
    index = index_shards(str(tmp_path / "train-{000000..000003}.tar"))
    labels = next(iter(ShardBatches(index_shards(shards), 400, 400, 0, 1)))[2]
    assert index.counts == [100] * 4 and index.task_ends == [] and index.num_classes == int(labels.max()) + 1
    piped = index_shards(f"pipe:cat {tmp_path}/train-{{000000..000003}}.tar")  # a command's output, as a URL's
    assert piped.urls[0] == f"pipe:cat {tmp_path}/train-000000.tar" and piped.counts == index.counts
    # A shard cut short after its index was written: a clear error, not a stall or a short stream.
    cut = index_shards(shards)
    cut.counts[-1] += 5
    with pytest.raises(SoloOsslError, match="the shards end after 400 samples, and their index lists 405"):
        list(ShardBatches(cut, 32, 405, 10, 13))


def command(*overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "main_pretrain.py"), "--config-name", "online/embedded/simclr", *overrides]


def kill_after_checkpoint(process: subprocess.Popen, run_dir: Path) -> None:
    """SIGKILL ``process`` as soon as its run has saved its first checkpoint (mid-stream)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    assert last.exists() and not (run_dir / "final.ckpt").exists()


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.long
def test_a_shard_stream_killed_with_sigkill_resumes_to_the_uninterrupted_weights(tiny_config, shards, tmp_path):
    overrides = [*EMBEDDED_TINY, *STREAM, *shard_args(shards)]
    overrides += ["++online.checkpoint_every=3", f"++output_dir={tmp_path}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    full = run_pretrain(tiny_config("online/embedded/simclr", *overrides, "++name=full"))
    kill_after_checkpoint(start(command(*overrides, "++name=killed"), env), tmp_path / "killed")
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=False)
    streamed = saved["online"]["position"] * 32  # the checkpoint's (shard, offset): where the rerun continues
    where = saved["callbacks"]["ShardPosition"]
    assert (Path(where["shard"]).name, where["offset"]) == (f"train-{streamed // 100:06d}.tar", streamed % 100)
    again = subprocess.run(command(*overrides, "++name=killed"), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming the stream at batch" in again.stdout
    assert_same_weights(weights(full), weights(tmp_path / "killed" / "final.ckpt"))
    saved = torch.load(tmp_path / "killed" / "final.ckpt", weights_only=False)["callbacks"]["ShardPosition"]
    assert saved["shard"] == "" and saved["offset"] == 0  # the end of the stream


WRITER = """
import os, sys, time
import numpy as np
from PIL import Image
folder, count, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
images = np.load(sys.argv[4])["x_train"]
for i in range(count):
    Image.fromarray(images[i]).save(os.path.join(folder, f".img{i:04d}.png.part"), format="PNG")
    os.rename(os.path.join(folder, f".img{i:04d}.png.part"), os.path.join(folder, f"img{i:04d}.png"))
    time.sleep(every)
"""


@pytest.mark.long
def test_a_live_folder_trains_every_file_once_across_a_sigkill(tmp_path):
    from solo_ossl.data.datasets import EMBEDDED_PATH

    folder, out = tmp_path / "incoming", tmp_path / "runs"
    folder.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    files, rate = 96, 0.08  # 12.5 files a second (8 s), from when the run is waiting for them
    overrides = [*TINY, "++data.dataset=live_folder", f"++data.data_dir={folder}", "++online.skip_first_task=false"]
    overrides += ["++online.stream_batch_size=16", "++online.steps_per_batch=3", "++online.memory.capacity=64"]
    overrides += ["++online.checkpoint_every=2", "++data.live.poll_s=0.05", "++data.live.idle_timeout_s=4"]
    overrides += ["++data.load_size=16", f"++output_dir={out}", "++name=live", "++eval.every=0"]
    run = start(command(*overrides), env)
    while not (out / "live" / "stream.json").exists() and run.poll() is None:  # written right before the stream
        time.sleep(0.05)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(files), str(rate), str(EMBEDDED_PATH)])
    kill_after_checkpoint(run, out / "live")
    assert writer.poll() is None  # the files are still arriving
    again = subprocess.run(command(*overrides), env=env, capture_output=True, text=True, timeout=300)
    writer.wait(timeout=60)
    assert again.returncode == 0, again.stderr
    assert "resuming the stream at batch" in again.stdout
    assert "the live stream stopped: no new file for 4 s" in again.stdout
    with (out / "live" / "stream_files.csv").open() as f:
        rows = list(csv.DictReader(f))
    trained = collections.Counter(r["file"] for r in rows if r["status"] == "trained")
    assert trained == collections.Counter(f"img{i:04d}.png" for i in range(files))  # every file, once
    batches = [int(r["stream_batch"]) for r in rows]
    assert batches == sorted(batches) and sorted(set(batches)) == list(range(files // 16))
    position = torch.load(out / "live" / "final.ckpt", weights_only=False)["online"]["position"]
    assert position == files // 16


def naive_class_incremental(targets, task_classes, tasks, seed):
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for task in tasks:
        idx = torch.tensor([i for i, t in enumerate(targets.tolist()) if t in task_classes[task - 1]])
        parts.append(idx[torch.randperm(len(idx), generator=generator)])
    return torch.cat(parts)


def test_blurry_boundaries_move_a_share_of_each_task_into_its_neighbours():
    targets = torch.arange(10).repeat_interleave(50)
    task_classes = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    tasks = [1, 2, 3, 4, 5]
    sharp = stream_order(targets, task_classes, tasks, seed=3)
    assert torch.equal(sharp, naive_class_incremental(targets, task_classes, tasks, 3))
    assert torch.equal(stream_order(targets, task_classes, tasks, seed=3, blurry=0.0), sharp)
    segments = stream_segments(targets, task_classes, tasks, seed=3, blurry=0.2)
    assert sorted(torch.cat(segments).tolist()) == list(range(500))  # every sample once
    task_of = {c: t for t, classes in enumerate(task_classes) for c in classes}
    for t, segment in enumerate(segments):
        origin = collections.Counter(task_of[int(targets[i])] for i in segment)
        assert origin[t] == 80  # 100 - 20% moved out
        assert set(origin) <= {t - 1, t, t + 1}
    moved_in = sum(len(s) for s in segments) - 5 * 80
    assert moved_in == 100
    # The first task's moved samples all go to task 2, the last's to task 4.
    origin_2 = collections.Counter(task_of[int(targets[i])] for i in segments[1])
    assert origin_2[0] == 20
    assert task_sample_indices(targets, task_classes, [1])[0].numel() == 100


def naive_queue(arrivals: list[list[str]], takes: list[int], bound: int, policy: str):
    """The queue's contents after each (arrival, take), written out by hand."""
    waiting, disk, dropped, out = [], [], [], []
    for names, take in zip(arrivals, takes, strict=True):
        disk += sorted(names)
        if policy == "drop_oldest":
            waiting += disk
            disk = []
            while bound and len(waiting) > bound:
                dropped.append(waiting.pop(0))
        else:
            while disk and (not bound or len(waiting) < bound):
                waiting.append(disk.pop(0))
        out.append(waiting[:take])
        waiting = waiting[take:]
        if policy == "wait":
            while disk and (not bound or len(waiting) < bound):
                waiting.append(disk.pop(0))
    return out, dropped


@pytest.mark.parametrize(
    "stream", [["++online.stream.order=iid"], ["++online.stream.blurry=0.3", "++online.stream.blurry_mode=boundary"]]
)
def test_the_bare_run_streams_the_order_a_run_streams(tiny_config, stream):
    """The Lightning-free run (the throughput benchmark's loop, the algorithm's tests) streams what
    ``main_pretrain.py`` streams for the same config, whatever its order and boundaries."""
    cfg = tiny_config("online/embedded/barlow_rals", *stream)
    splits = build_datasets(cfg.data, cfg.seed)
    order = bare_online_run(cfg).order
    assert torch.equal(order, StreamSource.of_dataset(cfg, splits.train, class_split(cfg, splits)[1]).order)
    assert not torch.equal(order, bare_online_run(tiny_config("online/embedded/barlow_rals")).order)


@pytest.mark.parametrize("policy", ["wait", "drop_oldest"])
@pytest.mark.parametrize("bound", [0, 5])
def test_the_live_queue_follows_its_policy(policy, bound):
    rng = np.random.default_rng(0)
    counter, arrivals, takes = 0, [], []
    for _ in range(30):
        n = int(rng.integers(0, 8))
        arrivals.append([f"f{counter + i:03d}" for i in range(n)])
        counter += n
        takes.append(int(rng.integers(0, 6)))
    queue = LiveQueue(bound, policy)
    got = []
    for t, (names, take) in enumerate(zip(arrivals, takes, strict=True)):
        queue.arrive([(t, name) for name in names])
        got.append(queue.take(take))
    expected, dropped = naive_queue(arrivals, takes, bound, policy)
    assert got == expected and queue.dropped == dropped
    if policy == "wait":
        assert not dropped  # nothing is lost


def test_shards_through_dali_train_as_their_image_folder_does(tmp_path, tiny_config):
    from .test_dali import dali_overrides, write_jpeg_tree

    root = write_jpeg_tree(tmp_path / "tree", per_class=8)
    online = ["++online.stream_batch_size=16", "++online.steps_per_batch=3", "++online.skip_first_task=false"]
    online += ["++online.memory.batches=1.0", "++online.memory.capacity=16", "++eval.every=0"]
    overrides = [*dali_overrides(root), *online]
    writer = load_config(["--config-name", "online/embedded/simclr", *TINY, *overrides])
    pattern = write_dataset_shards(writer, tmp_path / "shards", samples_per_shard=10)
    runs = {}
    for name, data in (("folder", []), ("shards", shard_args(pattern))):
        recorder = Batches()
        cfg = tiny_config("online/embedded/simclr", *overrides, *data, f"++name={name}")
        runs[name] = (recorder, torch.load(run_pretrain(cfg, [recorder]), weights_only=False))
    (a, sa), (b, sb) = runs["folder"], runs["shards"]
    assert len(a.targets) == len(b.targets) == 2  # 32 training files in stream batches of 16
    assert all(torch.equal(x, y) for x, y in zip(a.targets, b.targets, strict=True))
    assert_same_weights(sa["state_dict"], sb["state_dict"])  # DALI decoded the same bytes in the same order
    assert torch.equal(torch.cat(b.images), torch.arange(32))  # the stream carried stream positions


def test_the_dali_store_keeps_what_the_memory_holds_and_reads_the_rest_from_the_shards(shards):
    from solo_ossl.data.shards import ShardBytes, raw_samples

    index = index_shards(shards)
    everything = [s["png"] for s in raw_samples(index.urls)]
    store = ShardBytes(index)
    list(ShardBatches(index, 32, 400, 0, 4, store=store))  # four stream batches deposited
    assert sorted(store.encoded) == list(range(128))
    store.keep({5, 77}, before=96)  # streamed up to 96; the memory holds 5 and 77
    assert sorted(store.encoded) == [5, 77, *range(96, 128)]
    # A resumed run's memory: positions in three shards, read again from them.
    wanted = torch.tensor([399, 5, 250, 120, 5])
    assert [a.tobytes() for a in store.read(wanted)] == [everything[i] for i in wanted.tolist()]


def test_the_cla_presets_set_the_protocol_and_run(tiny_config, tmp_path):
    from solo_ossl.online.settings import memory_batch_size

    for dataset in ("cifar100", "embedded"):
        cfg = load_config(["--config-name", f"online/{dataset}/simclr_cla"])
        online = cfg.online
        assert (cfg.data.num_tasks, online.stream_batch_size, online.steps_per_batch) == (20, 10, 3)
        assert memory_batch_size(online) == 128 and not online.skip_first_task and not cfg.pretrained_ckpt
    run = tiny_config("online/embedded/simclr_cla", "++data.dataset=embedded", "++online.max_stream_batches=14")
    final = torch.load(run_pretrain(run), weights_only=False)
    assert final["online"]["position"] == 14
    with (tmp_path / "simclr-embedded-cla" / "online_steps.csv").open() as f:
        last = [r for r in csv.DictReader(f) if r["stream_batch"] == "13"]
    assert [int(r["selected"]) for r in last] == [10 + 128] * 3  # the memory holds 130 by then: 3 passes of 138
    # 20 tasks of one class, 100 images each: a task ends every 10 stream batches.
    ends = json.loads((tmp_path / "simclr-embedded-cla" / "stream.json").read_text())["task_end_batches"]
    assert ends == {str(10 * t): t for t in range(1, 21)}


def scale_seq_sampler_blend(segments: list[list[int]], ratio: float, generator: torch.Generator) -> list[list[int]]:
    """SCALE's loop (Orienfish/SCALE data_utils.py, SeqSampler.__iter__), one sample at a time, drawing its
    probabilities from ``generator`` as ``blend_boundaries`` does."""
    segments = [list(s) for s in segments]
    for c in range(1, len(segments)):
        b = int(min(len(segments[c]), len(segments[c - 1])) * ratio / 2)
        if b == 0:
            continue
        draws = torch.rand(b, generator=generator).tolist()
        for ind in range(b):
            if draws[ind] < 0.5 - 0.45 * ind / b:
                segments[c - 1][-ind - 1], segments[c][ind] = segments[c][ind], segments[c - 1][-ind - 1]
    return segments


def test_scale_boundary_blending_follows_scales_sampler():
    from solo_ossl.online.stream import blend_boundaries

    segments = [torch.arange(100 * t, 100 * t + n) for t, n in enumerate((100, 80, 100, 60))]
    got = blend_boundaries(segments, 0.5, torch.Generator().manual_seed(1))
    expected = scale_seq_sampler_blend([s.tolist() for s in segments], 0.5, torch.Generator().manual_seed(1))
    assert [s.tolist() for s in got] == expected
    assert [len(s) for s in got] == [100, 80, 100, 60] and not torch.equal(got[1], segments[1])
    for t, segment in enumerate(got):  # only samples of a neighbour, and only within b of the boundary
        foreign = [(i, int(x) // 100) for i, x in enumerate(segment.tolist()) if int(x) // 100 != t]
        assert all(abs(origin - t) == 1 for _, origin in foreign)
        assert all(i < 25 or i >= len(segment) - 25 for i, _ in foreign)


def test_shard_patterns_get_clear_errors(tmp_path):
    args = ["--config-name", "online/embedded/simclr", "++data.dataset=webdataset", f"++output_dir={tmp_path}"]
    unquoted = run_script("main_pretrain.py", *args, f"++data.data_dir={tmp_path}/train-{{000000..000001}}.tar")
    assert unquoted.returncode == 2 and unquoted.stderr.startswith("error: cannot parse override")
    assert (
        f"quote a value with braces: \"++data.data_dir='{tmp_path}/train-{{000000..000001}}.tar'\"" in unquoted.stderr
    )
    missing = run_script("main_pretrain.py", *args, f"++data.data_dir='{tmp_path}/train-{{000000..000001}}.tar'")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: shard {tmp_path}/train-000000.tar does not exist (2 of 2 missing): set data.data_dir to the shards' "
        "pattern, e.g. '<dir>/train-{000000..000009}.tar', or write them with python main_shards.py"
    )


def test_a_resumed_stream_counts_the_requested_samples_of_its_own_batches():
    cfg = load_config(["--config-name", "online/embedded/simclr", "++online.skip_first_task=false"])
    cfg.data.num_tasks = 1
    dataset = ArrayDataset(torch.zeros((70, 3, 4, 4), dtype=torch.uint8), torch.zeros(70, dtype=torch.long))
    source = StreamSource.of_dataset(cfg, dataset, task_classes=[[0]])
    loader = source.loader(batch_size=32, start=2, stop=3)  # resumed at the last stream batch: 6 samples
    assert [len(b[0]) for b in loader] == [6] and source.requested(0) == 6
