"""Several processes through Lightning's DDP, on the CPU with gloo: two processes of one thread each, launched by
Lightning from the entry-point scripts (as a user runs them)."""

import json
import os

import pytest
import torch

from solo_ossl.args import load_config
from solo_ossl.online.stream import StreamBatchSampler
from solo_ossl.utils.distributed import check_devices, weights_checksum
from solo_ossl.utils.errors import SoloOsslError

from .conftest import TINY, run_script

ONLINE = [
    "--config-name",
    "online/embedded/barlow_rals",
    *TINY,
    "++data.synthetic_per_class=24",  # 240 samples: 8 stream batches of 32 (the last 16), two processes of half
    "++online.stream_batch_size=32",
    "++online.steps_per_batch=3",
    "++online.skip_first_task=false",
    "++online.memory.capacity=128",
    "++online.memory.store=indices",
    "++online.k=32",
    "++method.group_size=4",
    "++online.checkpoint_every=2",
    "++eval.every=0",
    "++accelerator=cpu",
]
TWO = ["++devices=2", "++strategy=ddp", "++online.check_replicas=true"]


def two_processes(script: str, *args: str):
    """``script`` with its arguments; its Trainer launches the second process (one thread each: they share cores)."""
    result = run_script(script, *args, threads=1)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_stream_batches_split_over_processes_see_every_sample_once():
    order = torch.randperm(100)
    whole = list(StreamBatchSampler(order, 20))
    parts = [list(StreamBatchSampler(order, 20, rank=r, world=2)) for r in (0, 1)]
    for batch, first, second in zip(whole, *parts, strict=True):
        assert first + second == batch and not set(first) & set(second) and len(first) == len(second) == 10
    resumed = list(StreamBatchSampler(order, 20, start=3, rank=1, world=2))
    assert resumed == parts[1][3:]


def test_bad_device_counts_and_strategies_are_refused(tmp_path):
    cfg = load_config(["--config-name", "online/embedded/barlow_rals", "++accelerator=cpu", "++devices=4096"])
    with pytest.raises(SoloOsslError, match="devices=4096 but this machine has"):
        check_devices(cfg)
    with pytest.raises(SoloOsslError, match="key 'strategy'.*expected one of \\[auto, ddp\\]"):
        load_config(["--config-name", "online/embedded/barlow_rals", "++strategy=horovod"])
    cfg.devices, cfg.sync_batchnorm = 1, True
    with pytest.raises(SoloOsslError, match="sync_batchnorm needs GPUs"):
        check_devices(cfg)
    result = run_script("main_pretrain.py", *ONLINE, "++devices=4096", f"++output_dir={tmp_path}")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: devices=4096 but this machine has")


def test_weights_checksum_sees_any_change():
    layer = torch.nn.Linear(4, 3)
    before = weights_checksum(layer)
    with torch.no_grad():
        layer.weight[1, 2] += 1e-3
    assert weights_checksum(layer) != before


@pytest.mark.long
def test_two_process_online_run_shards_the_stream_and_memory_and_resumes_exactly(tmp_path):
    out = f"++output_dir={tmp_path}"
    two_processes("main_pretrain.py", *ONLINE, *TWO, out, "++name=full")
    full = torch.load(tmp_path / "full" / "final.ckpt", weights_only=False)
    online = full["online"]
    assert online["world_size"] == 2 and len(online["shards"]) == 2
    stream = json.loads((tmp_path / "full" / "stream.json").read_text())
    shards = [s["memory"] for s in online["shards"]]
    # Each process saw its half of every stream batch: together, the whole stream once.
    assert [s["num_seen"] for s in shards] == [stream["num_samples"] // 2] * 2
    stored = [set(s["data"].tolist()) for s in shards]
    assert all(len(s) == 64 for s in stored) and not stored[0] & stored[1]  # disjoint shards of capacity 128 / 2
    assert online["shards"][0]["images_backward"] == online["shards"][1]["images_backward"]  # global counters
    # (check_replicas compared the weights of both processes after every stream batch)

    # Resumed from the checkpoint at the end of task 3 (stream batch 5 of 8): the same weights as the uninterrupted run.
    middle = tmp_path / "full" / "checkpoints" / "task3.ckpt"
    assert torch.load(middle, weights_only=False)["online"]["shards"][0]["position"] == 5
    two_processes("main_pretrain.py", *ONLINE, *TWO, out, "++name=resumed", f"++resume={middle}")
    resumed = torch.load(tmp_path / "resumed" / "final.ckpt", weights_only=False)
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    last = middle

    # The same stream from WebDataset shards, written in this config's stream order (the memory holds images): each
    # process reads its part of every stream batch, and the run reaches the same weights.
    from solo_ossl.run.shards import write_dataset_shards

    pattern = write_dataset_shards(load_config(ONLINE), tmp_path / "shards", samples_per_shard=50)
    sharded = [
        "++data.dataset=webdataset",
        f"++data.data_dir='{pattern}'",
        "++data.load_size=16",
        "++data.num_workers=0",
    ]
    two_processes("main_pretrain.py", *ONLINE, *TWO, out, "++name=sharded", "++online.memory.store=images", *sharded)
    from_shards = torch.load(tmp_path / "sharded" / "final.ckpt", weights_only=False)
    for key, value in full["state_dict"].items():
        assert torch.equal(value, from_shards["state_dict"][key]), key

    # A different number of processes cannot take over the memory shards.
    one = run_script("main_pretrain.py", *ONLINE, out, "++name=cut", f"++resume={last}")
    assert one.returncode == 2 and "saved by 2 process(es) and this run has 1" in one.stderr


# slow (-m slow): the offline and linear entry points under DDP. The offline step over 2 processes is
# tests/test_ddp_equivalence.py; Lightning's DDP launch from an entry point, the online test above.
@pytest.mark.slow
@pytest.mark.long
def test_two_process_offline_pretraining_and_linear_evaluation(tmp_path):
    out = f"++output_dir={tmp_path}"
    pretrain = ["--config-name", "pretrain/embedded/barlow", *TINY, out, "++max_epochs=1", "++accelerator=cpu"]
    two_processes("main_pretrain.py", *pretrain, "++devices=2", "++strategy=ddp", "++name=offline")
    final = tmp_path / "offline" / "final.ckpt"
    assert "backbone.conv1.weight" in torch.load(final, weights_only=False)["state_dict"]
    linear = ["--config-name", "linear/embedded", "++data.dataset=synthetic", "++data.synthetic_num_classes=10"]
    linear += ["++data.synthetic_per_class=32", "++data.crop_size=16", "++precision=32", "++progress_bar=false"]
    linear += ["++max_epochs=1", out]
    linear += [f"++pretrained_ckpt={final}", "++mode=augmented", "++accelerator=cpu", "++devices=2", "++strategy=ddp"]
    result = two_processes("main_linear.py", *linear)
    assert result.stdout.count("linear probe") == 1  # one process reports
    assert 0 <= json.loads((tmp_path / "linear-embedded" / "linear_results.json").read_text())["top1"] <= 100


@pytest.mark.long
def test_a_crashed_process_stops_the_run_instead_of_hanging_it(tmp_path):
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    cmd = [sys.executable, str(ROOT / "main_pretrain.py"), *ONLINE, *TWO, f"++output_dir={tmp_path}"]
    cmd += ["++dist_timeout_s=10", "++online.steps_per_batch=20"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    started = time.monotonic()
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as launcher:
        children = []
        while not children and time.monotonic() - started < 120:
            time.sleep(0.5)
            children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
        assert children, "Lightning did not start the second process"
        time.sleep(8)  # inside the stream
        subprocess.run(["kill", "-9", *children])
        try:
            launcher.wait(timeout=180)
        except subprocess.TimeoutExpired:
            launcher.kill()
            pytest.fail("the run hung after a process crashed")
    assert launcher.returncode != 0
