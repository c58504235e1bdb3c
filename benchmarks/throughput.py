"""Throughput of the online training path on this machine, measured in one run (not a test).

    python benchmarks/throughput.py [--width 0.25] [--steps 10] [--batches 5] [--out benchmarks/RESULTS.md]

Reports, on the same ResNet18 (Barlow Twins) and the same real CIFAR-100 images (the shared npz, or the embedded
subset without it):
 1. data loading + augmentation alone, images/s (two views each) for a step's 384 candidates: per-image PIL
    (torchvision) vs batched tensor ops (kornia), from decoded arrays and from JPEG files; JPEG files through our
    torch ImageFolder path vs the DALI CPU pipeline; the same at ImageNet size (256 px JPEGs, 224 crops);
 2. the online step without RALS (stream 128 + memory 128, trains 256) and 3. with RALS (stream 128 + memory 256,
    scores 384 with the current model and the anchor, trains 256), through Lightning (``run_pretrain``);
 4. a bare PyTorch loop doing the no-RALS math (same model, memory, SLCLRS, augmentation) without Lightning;
 5. fp32 vs bf16-mixed + channels_last, and the glibc malloc settings on vs off.
Then the ratios: RALS / no-RALS step time (theory about 2.0), data share of the step (augmentation + batch fetch,
goal <= 10%), Lightning overhead vs the bare loop (goal <= 5%).

Every measurement runs in its own subprocess, one at a time (two torch processes on 2 cores slow each other
several-fold), so that the malloc settings can differ between them. The first two stream batches of a run are
not timed (the memory is still filling, and RALS trains on all candidates until there are more than k), nor is the
last (the task end saves a checkpoint); the stream is one task (``data.num_tasks=2``, task 2 streamed).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.utils.device import cpu_has_native_bf16, cpu_name  # noqa: E402

SHARED_NPZ = ROOT.parent / "shared" / "datasets" / "cifar100" / "cifar100_uint8.npz"
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "2147483647", "MALLOC_TRIM_THRESHOLD_": "2147483647"}
CANDIDATES = 384  # stream 128 + memory 256: what a RALS step augments


# ---- data ---------------------------------------------------------------------------------------------------
def load_arrays(npz: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(npz) if npz else (SHARED_NPZ if SHARED_NPZ.is_file() else None)
    if path is None:
        from solo_ossl.data.datasets import EMBEDDED_PATH

        path = EMBEDDED_PATH
    with np.load(path) as f:
        return f["x_train"], f["y_train"]


def write_jpeg_tree(root: Path, images: np.ndarray, labels: np.ndarray, size: int | None = None) -> Path:
    """``root/train/c<label>/<i>.jpg`` (and a small val/ split), quality 90; upscaled to ``size`` if given."""
    from PIL import Image

    for split, keep in (("train", slice(None)), ("val", slice(0, 2))):
        for label in np.unique(labels):
            folder = root / split / f"c{label:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(labels == label)[keep]:
                img = Image.fromarray(images[i])
                if size:
                    img = img.resize((size, size), Image.BICUBIC)
                img.save(folder / f"{i}.jpg", quality=90)
    return root


def per_image_recipe(crop_size: int, mean, std, view_cfg):
    """The classic torchvision per-image pipeline of one view (PIL in, normalized tensor out)."""
    from torchvision.transforms import v2

    from solo_ossl.data.augment import blur_kernel_size

    blur = blur_kernel_size(crop_size)
    return v2.Compose(
        [
            v2.RandomResizedCrop(crop_size, scale=(view_cfg.crop_min_scale, view_cfg.crop_max_scale)),
            v2.RandomApply(
                [v2.ColorJitter(view_cfg.brightness, view_cfg.contrast, view_cfg.saturation, view_cfg.hue)],
                p=view_cfg.color_jitter_prob,
            ),
            v2.RandomGrayscale(view_cfg.gray_scale_prob),
            v2.RandomApply([v2.GaussianBlur(blur, (0.1, 2.0))], p=view_cfg.gaussian_prob),
            v2.RandomSolarize(128, p=view_cfg.solarization_prob),
            v2.RandomHorizontalFlip(view_cfg.horizontal_flip_prob),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (pipeline build, kernel selection)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def part_data(args) -> dict:
    """Images/s (two augmented views each) of every way to produce a step's candidates."""
    from omegaconf import OmegaConf
    from PIL import Image

    from solo_ossl.args.schema import DataConfig
    from solo_ossl.data import ImageFolderDataset, MultiViewAugment
    from solo_ossl.data.dali import DaliTransform, dali_available, file_index_dataset
    from solo_ossl.data.datasets import CIFAR100_STATS, IMAGENET_STATS

    views_cfg = OmegaConf.structured(DataConfig()).augmentations
    x, y = load_arrays(args.npz)
    x, y = x[:CANDIDATES], y[:CANDIDATES]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale, jpeg_size, crop, n, stats in (
            ("cifar", None, 32, CANDIDATES, CIFAR100_STATS),
            ("imagenet", 256, 224, 128, IMAGENET_STATS),
        ):
            tree = write_jpeg_tree(Path(tmp) / scale, x[:n], y[:n], jpeg_size)
            folder = ImageFolderDataset(tree / "train", load_size=jpeg_size or 32)
            indices = torch.arange(len(folder))
            recipes = [per_image_recipe(crop, *stats, v) for v in views_cfg]
            batched = MultiViewAugment(views_cfg, crop, *stats)
            decoded = folder.load(indices)  # uint8 [n, 3, S, S]
            arrays = [np.ascontiguousarray(img.permute(1, 2, 0).numpy()) for img in decoded]

            def pil_from_arrays(arrays=arrays, recipes=recipes):
                for a in arrays:
                    img = Image.fromarray(a)
                    [r(img) for r in recipes]

            def pil_from_jpeg(folder=folder, recipes=recipes):
                for f in folder.files:
                    with Image.open(f) as img:
                        img = img.convert("RGB")
                        [r(img) for r in recipes]

            ways = {
                "per-image PIL, decoded arrays": pil_from_arrays,
                "batched (solo_ossl.data.augment), decoded arrays": lambda b=batched, d=decoded: b(d),
                "per-image PIL, JPEG files": pil_from_jpeg,
                "torch ImageFolder (PIL decode) + batched": lambda b=batched, f=folder, i=indices: b(f.load(i)),
            }
            if dali_available():
                dali = DaliTransform(
                    file_index_dataset(folder),
                    "multiview",
                    dict(view_cfgs=list(views_cfg), crop_size=crop, mean=stats[0], std=stats[1]),
                    num_threads=2,
                )
                ways["DALI CPU pipeline, JPEG files"] = lambda d=dali, i=indices: d(i)
            for way, fn in ways.items():
                seconds = timed(fn, args.repeats)
                results[f"{scale}: {way}"] = n / seconds
                print(f"  {scale} {way}: {n / seconds:.0f} img/s", flush=True)
    return results


# ---- online steps ---------------------------------------------------------------------------------------------
def stream_per_class(args, num_classes: int) -> int:
    """Images per class such that the stream (task 2 of 2, half the classes) has about ``args.batches`` batches.
    One streamed task: a task end (which saves a checkpoint) falls only on the last batch, which is not timed."""
    return -(-args.batches * 128 // (num_classes // 2))


def step_config(args, rals: bool, precision: str, out_dir: str, loader: str = "torch", tree: str = ""):
    from solo_ossl.args import load_config

    on_gpu = args.device == "cuda"
    per_class = stream_per_class(args, 100)
    data = ["++data.dataset=npz", f"++data.data_dir={args.npz or SHARED_NPZ}"]
    if not (args.npz or SHARED_NPZ.is_file()):
        data, per_class = ["++data.dataset=embedded"], stream_per_class(args, 20)
    if loader == "dali":
        data = ["++data.dataset=imagefolder", f"++data.data_dir={tree}", "++data.loader=dali"]
        data += [f"++data.dali_device={'gpu' if on_gpu else 'cpu'}", "++data.load_size=32", "++data.num_workers=2"]
    if args.full_stream:  # all of CIFAR-100's tasks 2-5, every training image
        per_class = 0
    return load_config(
        [
            "--config-name",
            "online/cifar100/barlow_rals" if rals else "online/cifar100/barlow",
            *data,
            f"++data.train_per_class={per_class if loader == 'torch' else 0}",
            f"++data.num_tasks={5 if args.full_stream else 2}",
            f"++accelerator={'gpu' if on_gpu else 'cpu'}",
            f"++backbone.width={args.width}",
            f"++online.steps_per_batch={args.steps}",
            f"++precision={precision}",
            f"++output_dir={out_dir}",
            "++progress_bar=false",
            "++online.checkpoint_every=1000",
        ]
    )


class StepTimer(Callback):
    """Wall time per stream batch (from one batch's end to the next: fetch + transfer + hooks + step + logging)
    and the time spent in the method's augmentation (views of stream + memory, N times per batch)."""

    def __init__(self) -> None:
        self.wall, self.fetch, self.augment = [], [], []
        self.augment_running, self.last_end, self.augment_start = 0.0, 0.0, 0.0

    def on_train_start(self, trainer, pl_module):
        pl_module.augment.register_forward_pre_hook(lambda *_: self._start_augment())
        pl_module.augment.register_forward_hook(lambda *_: self._stop_augment())
        self.last_end = time.perf_counter()

    @staticmethod
    def _sync() -> None:
        # On a GPU the augmentation's kernels run asynchronously: wait for them to time it (this adds syncs).
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def _start_augment(self) -> None:
        self._sync()
        self.augment_start = time.perf_counter()

    def _stop_augment(self) -> None:
        self._sync()
        self.augment_running += time.perf_counter() - self.augment_start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.fetch.append(time.perf_counter() - self.last_end)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self.wall.append(now - self.last_end)
        self.augment.append(self.augment_running)
        self.augment_running, self.last_end = 0.0, now

    def summary(self, steps: int) -> dict:
        wall, fetch, augment = (np.array(timed_batches(v)) for v in (self.wall, self.fetch, self.augment))
        return {
            "s_per_step": float(wall.mean() / steps),
            "data_share": float((fetch + augment).sum() / wall.sum()),
            "batches_timed": len(wall),
            "run_s": float(sum(self.wall)),
        }


def part_step(args) -> dict:
    from solo_ossl.run.pretrain import run_pretrain

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        tree = ""
        if args.loader == "dali":
            x, y = load_arrays(args.npz)
            per_class = stream_per_class(args, 100)
            keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
            tree = str(write_jpeg_tree(Path(tmp) / "tree", x[keep], y[keep]))
        run_pretrain(step_config(args, args.rals, args.precision, tmp, args.loader, tree), [timer])
    return timer.summary(args.steps)


def part_bare(args) -> dict:
    """The no-RALS online step as a plain PyTorch loop: the online algorithm's own ``train_stream_batch`` over the
    stream (``solo_ossl.run.bare``), without Trainer, hooks, logging or the step CSV."""
    from solo_ossl.online.algorithm import train_stream_batch
    from solo_ossl.run.bare import bare_online_run
    from solo_ossl.utils.device import autocast_dtype, resolve_precision

    with tempfile.TemporaryDirectory() as tmp:
        cfg = step_config(args, False, args.precision, tmp)
    run = bare_online_run(cfg)
    dtype = autocast_dtype(resolve_precision(cfg.precision, cfg.accelerator))
    wall, last = [], time.perf_counter()
    for batch in run.batches():
        with torch.autocast(run.device.type, dtype=dtype, enabled=dtype is not None):
            log, values = train_stream_batch(run.learner, run.model, run.optimizer, batch)
        now = time.perf_counter()
        wall.append(now - last)
        last = now
    kept = timed_batches(wall)
    return {"s_per_step": float(np.mean(kept) / cfg.online.steps_per_batch), "batches_timed": len(kept)}


def timed_batches(values: list) -> list:
    """Drop the first two stream batches (memory filling) and the last (task end: checkpoint save)."""
    return values[2:-1]


PARTS = {"data": part_data, "step": part_step, "bare": part_bare}


# ---- driver ---------------------------------------------------------------------------------------------------
def run_part(args, part: str, malloc: bool = True, **options) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC}
    if malloc:
        env.update(MALLOC)
    cmd = [sys.executable, __file__, "--part", part, "--width", str(args.width), "--steps", str(args.steps)]
    cmd += ["--device", args.device]
    cmd += ["--batches", str(args.batches), "--repeats", str(args.repeats)] + (["--npz", args.npz] if args.npz else [])
    for key, value in options.items():
        cmd += [f"--{key}", str(value)] if not isinstance(value, bool) else ([f"--{key}"] if value else [])
    print(f"> {part} {options} malloc={'on' if malloc else 'off'}", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"part {part} {options} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    print(f"  {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--batches", type=int, default=6, help="stream batches per run (the first two and the last are not timed)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per data-loading measurement")
    parser.add_argument("--pairs", type=int, default=2, help="alternating Lightning / bare-loop runs per precision")
    parser.add_argument("--npz", default="", help="dataset .npz (default: the shared CIFAR-100, else embedded)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    parser.add_argument(
        "--ratio-only",
        action="store_true",
        help="only the RALS / no-RALS step-time ratio: alternating runs of both, in fp32 and bf16",
    )
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--rals", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="32", help=argparse.SUPPRESS)
    parser.add_argument("--loader", default="torch", help=argparse.SUPPRESS)
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="cuda: the online step on the GPU (images/s with and without RALS, data share, DALI mixed when "
        "installed) and the wall-clock of a full CIFAR-100 BT+RALS online run at N = --steps",
    )
    parser.add_argument("--full-stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        torch.set_num_threads(os.cpu_count() or 1)
        print("RESULT " + json.dumps(PARTS[args.part](args)), flush=True)
        return
    started = time.perf_counter()
    if args.device == "cuda":
        report = gpu_report(args, started)
        print(report)
        with open(args.out, "a") as f:
            f.write(report)
        return
    if args.ratio_only:
        report = rals_ratio_report(args, started)
        print(report)
        with open(args.out, "a") as f:
            f.write(report)
        return
    data = run_part(args, "data")
    steps, spread = {}, {}
    for precision in ("32", "bf16-mixed"):
        # Lightning and the bare loop alternate, and the faster of each is kept: run-to-run drift of the machine
        # is as large as the difference being measured.
        runs = {False: [], "bare": []}
        for _ in range(args.pairs):
            runs[False].append(run_part(args, "step", precision=precision))
            runs["bare"].append(run_part(args, "bare", precision=precision))
        for key, results in runs.items():
            steps[(precision, key)] = min(results, key=lambda r: r["s_per_step"])
            spread[(precision, key)] = [r["s_per_step"] for r in results]
        steps[(precision, True)] = run_part(args, "step", rals=True, precision=precision)
    default = "bf16-mixed" if cpu_has_native_bf16() else "32"
    steps[(default, "malloc off")] = run_part(args, "step", malloc=False, precision=default)
    steps[(default, "dali")] = run_part(args, "step", precision=default, loader="dali")
    minutes = (time.perf_counter() - started) / 60
    report = format_report(args, data, steps, spread, default, minutes)
    print(report)
    with open(args.out, "a") as f:
        f.write(report)


def gpu_report(args, started: float) -> str:
    """The online step on one GPU (``--device cuda``), at precision ``auto``: no RALS and RALS, with the torch
    loader (kornia on the GPU) and DALI ``mixed`` when installed; then a full CIFAR-100 BT+RALS online run."""
    from solo_ossl.data.dali import dali_available
    from solo_ossl.utils.device import resolve_precision

    precision = resolve_precision("auto", "gpu")
    rows = []
    for loader in ("torch", "dali") if dali_available() else ("torch",):
        for rals in (False, True):
            r = run_part(args, "step", rals=rals, precision=precision, loader=loader)
            rows.append(
                f"| {loader} | {'RALS' if rals else 'no RALS'} | {r['s_per_step'] * 1000:.1f} | "
                f"{CANDIDATES / r['s_per_step'] if rals else 256 / r['s_per_step']:.0f} | {r['data_share']:.1%} |"
            )
    full = run_part(args, "step", rals=True, precision=precision, **{"full-stream": True})
    minutes = (time.perf_counter() - started) / 60
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "?"
    return "\n".join(
        [
            f"\n## Online step on a GPU — {datetime.date.today()}",
            f"Device: {name}; host {cpu_name()}, {os.cpu_count()} cores. Command: `python benchmarks/throughput.py "
            f"--device cuda --width {args.width} --steps {args.steps} --batches {args.batches}` ({minutes:.0f} min). "
            f"Precision {precision}, BT, real CIFAR-100 images, N = {args.steps}; images/s counts the candidates "
            "augmented per step (384 with RALS, 256 without). The data share synchronizes the GPU around the "
            "augmentation to time it.",
            "",
            "| loader | selection | ms/step | candidates/s | data share |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Full CIFAR-100 BT+RALS online run (tasks 2-5, N = {args.steps}, width {args.width}): "
            f"{full['run_s'] / 60:.1f} min of training.",
            "",
        ]
    )


def rals_ratio_report(args, started: float) -> str:
    """RALS / no-RALS step time from ``args.pairs`` alternating runs of each, per precision (the faster kept)."""
    rows = []
    for precision in ("32", "bf16-mixed"):
        runs = {False: [], True: []}
        for _ in range(args.pairs):
            for rals in (False, True):
                runs[rals].append(run_part(args, "step", rals=rals, precision=precision)["s_per_step"])
        plain, rals = min(runs[False]), min(runs[True])
        all_runs = ", ".join(f"{v:.3f}" for v in runs[False]) + " / " + ", ".join(f"{v:.3f}" for v in runs[True])
        rows.append(f"| {precision} | {plain:.3f} | {rals:.3f} | {rals / plain:.2f} | {all_runs} |")
    minutes = (time.perf_counter() - started) / 60
    return "\n".join(
        [
            f"\n## RALS / no-RALS step time — {datetime.date.today()}",
            f"Machine: {cpu_name()}, {platform.machine()}, {os.cpu_count()} cores, native bf16: "
            f"{cpu_has_native_bf16()}, no GPU. Command: `python benchmarks/throughput.py --ratio-only --width "
            f"{args.width} --steps {args.steps} --batches {args.batches} --pairs {args.pairs}` ({minutes:.0f} min). "
            f"Same setup as the throughput section (real CIFAR-100, BT, N = {args.steps}); the faster of "
            f"{args.pairs} alternating runs of each.",
            "",
            "| precision | no RALS s/step | RALS s/step | RALS / no RALS | all runs, no RALS / RALS |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def format_report(args, data: dict, steps: dict, spread: dict, default: str, minutes: float) -> str:
    cpu = cpu_name()
    source = args.npz or (SHARED_NPZ.name if SHARED_NPZ.is_file() else "embedded subset")
    name = {"32": "fp32", "bf16-mixed": "bf16 + channels_last"}
    lines = [
        f"\n## Throughput: data, online step, Lightning vs bare loop, precision, malloc — {datetime.date.today()}",
        f"Machine: {cpu}, {platform.machine()}, {os.cpu_count()} cores, native bf16: {cpu_has_native_bf16()}, no GPU. "
        f"Command: `python benchmarks/throughput.py --width {args.width} --steps {args.steps} --batches "
        f"{args.batches} --pairs {args.pairs}` ({minutes:.0f} min). ResNet18 width {args.width}, Barlow Twins, 32 px crops, real "
        f"CIFAR-100 images ({source}), N = {args.steps} steps per stream batch, stream batches 3 to "
        f"{args.batches - 1} of {args.batches} timed; DALI as CPU pipelines.",
        "",
        "### 1. Data loading + augmentation alone (two views per image)",
        "",
        "| source | images/s |",
        "|---|---|",
        *(f"| {way} | {rate:.0f} |" for way, rate in data.items()),
        "",
        "### 2-5. Online step (seconds per optimizer step; the batch's fetch, hooks and logging included)",
        "",
        "| precision | no RALS (trains 256) | RALS (scores 384, trains 256) | RALS / no RALS | bare loop, no RALS "
        "| Lightning overhead | data share, no RALS | data share, RALS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for precision in ("32", "bf16-mixed"):
        plain, rals, bare = steps[(precision, False)], steps[(precision, True)], steps[(precision, "bare")]
        lines.append(
            f"| {name[precision]} | {plain['s_per_step']:.3f} | {rals['s_per_step']:.3f} | "
            f"{rals['s_per_step'] / plain['s_per_step']:.2f} | {bare['s_per_step']:.3f} | "
            f"{100 * (plain['s_per_step'] / bare['s_per_step'] - 1):+.1f}% | {100 * plain['data_share']:.1f}% | "
            f"{100 * rals['data_share']:.1f}% |"
        )
    fp32, fast = steps[("32", False)]["s_per_step"], steps[("bf16-mixed", False)]["s_per_step"]
    off, dali = steps[(default, "malloc off")], steps[(default, "dali")]
    on = steps[(default, False)]["s_per_step"]
    lines += [
        "",
        "- no-RALS and bare-loop columns: the faster of "
        + f"{args.pairs} alternating runs; all runs, s/step: "
        + "; ".join(
            f"{name[p]} {'bare' if k == 'bare' else 'Lightning'} " + ", ".join(f"{v:.3f}" for v in spread[(p, k)])
            for p in ("32", "bf16-mixed")
            for k in (False, "bare")
        ),
        f"- fp32 / (bf16 + channels_last) step time, no RALS: {fp32 / fast:.2f}",
        f"- glibc malloc settings off / on, {name[default]}, no RALS: {off['s_per_step']:.3f} / {on:.3f} s = "
        f"{off['s_per_step'] / on:.2f}",
        f"- the same step fed by the DALI CPU pipeline from JPEG files ({name[default]}, no RALS): "
        f"{dali['s_per_step']:.3f} s/step, data share {100 * dali['data_share']:.1f}%",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
