"""The GPU check's measurements, one part per process (``bash benchmarks/gpu_check.sh`` runs them in order and writes
the results file). Each part prints one ``RESULT {json}`` line.

    python benchmarks/gpu_check.py env|throughput|imagenet|syncs|full [--dry-run] [--budget-s S]

- ``env``: the device, the versions of Python and the packages the project uses.
- ``throughput``: the online step (Barlow Twins, the paper's full ResNet18, bf16 where native) without and with RALS
  on CIFAR-sized synthetic images generated here (the real CIFAR-100 file cannot travel): seconds per local step,
  candidates per second, their ratio and the data share (augmentation + batch fetch), through Lightning; with the
  fused augmentation (the default) and, in the same process, the kornia pipeline it replaced (issue 42's before and
  after; kornia travels as a carried wheel, and without it only the fused rows are measured).
- ``imagenet``: the ImageNet-100 path at 224 px on synthetic 256 px JPEGs in an image folder (Barlow Twins without
  RALS, memory of file indices): the torch loader (PIL decoding, batched augmentation on the GPU), then DALI's GPU
  path (nvJPEG ``mixed`` decoding, GPU augmentation ops) where DALI is installed: trained images/s, data share.
- ``syncs``: host syncs per local step inside the N local steps (``torch.cuda.set_sync_debug_mode``); on the CPU
  (dry run) the host reads of the project's code (``solo_ossl.utils.host_reads``), which become syncs on a GPU.
- ``full``: Barlow Twins + RALS at N = 10 over a CIFAR-100-sized synthetic stream (tasks 2-5: 40,000 images, batch
  128, memory 10,000), through ``main_pretrain.py``'s driver; stopped at ``--budget-s`` and extrapolated if it
  would not finish in time (the result says which).

``--dry-run`` runs every part on the CPU at tiny sizes (width 0.125, 10 classes, N = 3), so that the script is known
to work before a GPU is lent.
"""

import argparse
import functools
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

PACKAGES = ("torch", "torchvision", "lightning", "timm", "torchmetrics", "kornia", "kornia_rs", "omegaconf", "numpy")


def sizes(dry: bool) -> dict:
    """What the parts train: the paper's scale on a GPU, a tiny one for the dry run."""
    if dry:
        return dict(width=0.125, classes=10, per_class=48, steps=3, batches=5, capacity=128, accelerator="cpu")
    return dict(width=1.0, classes=100, per_class=500, steps=10, batches=8, capacity=10000, accelerator="gpu")


# Dry run: a stream batch of 32 and k = 64 of 96 candidates, so that RALS scores and selects at tiny sizes.
DRY_SIZES = ["++method.proj_hidden_dim=128", "++method.proj_output_dim=128", "++online.stream_batch_size=32"]
DRY_SIZES += ["++online.k=64"]


def run_keys(dry: bool, out: str) -> list[str]:
    """The keys every part's online run shares: its size, device, precision, no evaluation or progress bar."""
    s = sizes(dry)
    keys = [f"++backbone.width={s['width']}", f"++online.steps_per_batch={s['steps']}"]
    keys += [f"++online.memory.capacity={s['capacity']}", f"++accelerator={s['accelerator']}", "++precision=auto"]
    keys += ["++eval.every=0", "++progress_bar=false", "++online.checkpoint_every=100000", f"++output_dir={out}"]
    return keys + (DRY_SIZES if dry else [])


def online_config(dry: bool, rals: bool, out: str, *extra: str):
    from solo_ossl.args import load_config

    s = sizes(dry)
    name = "online/cifar100/barlow_rals" if rals else "online/cifar100/barlow"
    synthetic = ["++data.dataset=synthetic", f"++data.synthetic_num_classes={s['classes']}"]
    synthetic += [f"++data.synthetic_per_class={s['per_class']}"]
    return load_config(["--config-name", name, *synthetic, *run_keys(dry, out), *extra])


def part_env(args) -> dict:
    from solo_ossl.utils.device import cpu_name, resolve_precision

    cuda = torch.cuda.is_available()
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU: {cpu_name()}",
        "cuda": torch.version.cuda,
        "host": f"{cpu_name()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "versions": versions,
        "precision_auto": resolve_precision("auto", "gpu" if cuda else "cpu"),
    }


class Stopwatch(Callback):
    """Wall time per stream batch and the augmentation's share (``throughput.StepTimer``), plus an optional deadline:
    the run stops after the first stream batch that ends past it."""

    def __init__(self, deadline: float | None = None, augment: str = "fused") -> None:
        from throughput import StepTimer

        self.timer, self.deadline, self.started = StepTimer(), deadline, time.perf_counter()
        self.augment = augment

    def on_train_start(self, trainer, pl_module):
        if self.augment == "kornia":  # the pipeline before issue 42, swapped in before the timer hooks it
            from tests.augment_reference import KorniaMultiView

            data, fused = pl_module.cfg.data, pl_module.augment
            stats = fused.normalize.mean.flatten().tolist(), fused.normalize.std.flatten().tolist()
            pl_module.augment = KorniaMultiView(list(data.augmentations), data.crop_size, *stats).to(pl_module.device)
        self.timer.on_train_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.timer.on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.timer.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.deadline is not None and time.perf_counter() > self.deadline:
            trainer.should_stop = True


def timed_online_run(cfg, batches: int, steps: int, augment: str = "fused") -> dict:
    """One online run of ``batches`` stream batches, its steady-state step timed (``Stopwatch``)."""
    from solo_ossl.run.pretrain import run_pretrain

    watch = Stopwatch(augment=augment)
    cfg.online.max_stream_batches = batches
    run_pretrain(cfg, [watch])
    summary = watch.timer.summary(steps)
    online = cfg.online
    candidates = round(online.stream_batch_size * (1 + online.memory.batches))  # 384 / 256 at full size
    trained = online.k if online.selection != "none" else candidates
    return {
        **summary,
        "candidates": candidates,
        "trained": trained,
        "candidates_per_s": candidates / summary["s_per_step"],
        "trained_per_s": trained / summary["s_per_step"],
    }


def part_throughput(args) -> dict:
    from lightning_utilities.core.imports import module_available

    s = sizes(args.dry_run)
    out = {}
    # The kornia rows first: the fused ones, measured second, do not profit from a colder machine.
    augments = ["kornia", "fused"] if module_available("kornia") else ["fused"]
    for augment in augments:
        for rals in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                result = timed_online_run(online_config(args.dry_run, rals, tmp), s["batches"], s["steps"], augment)
            out[("" if augment == "fused" else "kornia_") + ("rals" if rals else "no_rals")] = result
    out["rals_over_no_rals_step_time"] = out["rals"]["s_per_step"] / out["no_rals"]["s_per_step"]
    out["stream_batches_timed"] = f"3 to {s['batches'] - 1} of {s['batches']}"
    if "kornia_no_rals" not in out:
        out["kornia"] = "not measured: kornia is not installed (carry its wheel)"
    return out


def part_imagenet(args) -> dict:
    """The ImageNet-100 path at 224 px on synthetic JPEGs: the torch loader, then DALI's GPU path where installed."""
    from throughput import write_jpeg_tree

    from solo_ossl.args import load_config
    from solo_ossl.data.dali import dali_available
    from solo_ossl.data.datasets import synthetic_arrays

    dry = args.dry_run
    s = sizes(dry)
    classes, per_class, jpeg, crop = (4, 80, 64, 56) if dry else (20, 80, 256, 224)
    batches = 5 if dry else 6  # task 2 of 2: classes / 2 * per_class images, batches of the stream batch size
    out = {"jpeg_px": jpeg, "crop_px": crop, "images": classes * per_class}
    with tempfile.TemporaryDirectory() as tmp:
        x, y = synthetic_arrays(classes, per_class, 64, seed=0)
        tree = write_jpeg_tree(Path(tmp) / "imagenet", x, y, jpeg)
        loaders = {"torch": []}
        if dali_available():
            loaders["dali"] = ["++data.loader=dali", f"++data.dali_device={'cpu' if dry else 'gpu'}"]
        else:
            out["dali"] = "not measured: NVIDIA DALI is not installed"
        for loader, extra in loaders.items():
            folder = [f"++data.data_dir={tree}", "++data.num_tasks=2", f"++data.crop_size={crop}"]
            folder += [f"++data.load_size={jpeg}"]
            keys = [*folder, *run_keys(dry, f"{tmp}/{loader}"), *extra]
            cfg = load_config(["--config-name", "online/imagenet100/barlow", *keys])
            out[loader] = timed_online_run(cfg, batches, s["steps"])
    return out


def part_syncs(args) -> dict:
    from solo_ossl.online.algorithm import end_stream_batch, run_local_steps
    from solo_ossl.online.step import memory_features
    from solo_ossl.run.bare import bare_online_run
    from solo_ossl.utils.device import autocast_dtype, resolve_precision
    from solo_ossl.utils.host_reads import count_host_reads, reads_by_origin

    s = sizes(args.dry_run)
    out = {}
    for rals in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = online_config(args.dry_run, rals, tmp)
        run = bare_online_run(cfg)
        dtype = autocast_dtype(resolve_precision(cfg.precision, cfg.accelerator))
        counted, steps = 0, 0
        for position, batch in zip(range(4), run.batches(), strict=False):
            with torch.autocast(run.device.type, dtype=dtype, enabled=dtype is not None):
                if run.device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.set_sync_debug_mode("warn")
                    try:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            log = run_local_steps(run.learner, run.model, run.optimizer, batch)
                    finally:
                        torch.cuda.set_sync_debug_mode(0)
                    syncs = sum("synchroniz" in str(w.message) for w in caught)
                else:
                    with count_host_reads() as counts:
                        log = run_local_steps(run.learner, run.model, run.optimizer, batch)
                    syncs = reads_by_origin(counts).get("solo_ossl", 0)
            end_stream_batch(run.learner, batch, log, functools.partial(memory_features, run.learner, run.model))
            if position >= 2:  # the memory holds a full memory batch from the third stream batch on
                counted += syncs
                steps += log.n_steps
        what = "cuda syncs" if run.device.type == "cuda" else "host reads of solo_ossl (CPU: no syncs to count)"
        out["rals" if rals else "no_rals"] = {"per_local_step": counted / steps, "counted": what}
    out["steps_per_batch"] = s["steps"]
    return out


def part_full(args) -> dict:
    from solo_ossl.run.pretrain import run_pretrain

    s = sizes(args.dry_run)
    started = time.perf_counter()
    watch = Stopwatch(deadline=started + args.budget_s)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = online_config(args.dry_run, True, tmp)
        run_pretrain(cfg, [watch])
        stream = json.loads((Path(tmp) / cfg.name / "stream.json").read_text())
    seconds = time.perf_counter() - started
    done, total = len(watch.timer.wall), math.ceil(stream["num_samples"] / stream["batch_size"])
    train_s = sum(watch.timer.wall)
    result = {
        "stream_images": stream["num_samples"],
        "stream_batches": total,
        "stream_batches_done": done,
        "steps_per_batch": s["steps"],
        "memory_capacity": s["capacity"],
        "width": s["width"],
        "train_s": train_s,
        "wall_s_with_setup": seconds,
    }
    if done < total:
        steady = sum(watch.timer.wall[2:]) / max(1, done - 2)
        result["extrapolated_train_s"] = sum(watch.timer.wall[:2]) + steady * (total - 2)
        result["note"] = f"stopped at the {args.budget_s:.0f} s budget after {done} of {total} stream batches"
    return result


PARTS = {
    "env": part_env,
    "throughput": part_throughput,
    "imagenet": part_imagenet,
    "syncs": part_syncs,
    "full": part_full,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, at tiny sizes")
    parser.add_argument("--budget-s", type=float, default=240.0, help="full: stop and extrapolate after this long")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("error: no CUDA device: run the GPU check on a GPU, or pass --dry-run")
    print("RESULT " + json.dumps(PARTS[args.part](args)), flush=True)


if __name__ == "__main__":
    main()
