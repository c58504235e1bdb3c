"""The augmentation's CPU proxy for its GPU cost (issue 42): aten ops dispatched per call of the online augmentation
(two views of a recipe) at 128 and 384 images, and CPU milliseconds per call, for each candidate (not a test).

    python benchmarks/augment_ops.py [--repeats 20] [--config online/embedded/barlow_rals] [--crop 32]
        [--candidates fused,kornia,torchaug,kornia_compiled] [--step-batches 6]

At 32 px the GPU step is bound by kernel launches, not pixels: every aten op the augmentation dispatches is a launch
or host work there, so the op count per call, and whether it grows with the batch, is what a GPU pays for it.
Candidates:
- ``fused``: solo_ossl/data/augment.py (the default);
- ``kornia``: the kornia 0.9 pipeline it replaced (tests/augment_reference.py);
- ``torchaug``: torchaug's batch transforms (``batch_transform=True``; per-sample crops need ``num_chunks`` equal to
  the batch, since its crop draws one box per chunk); skipped when torchaug is not importable;
- ``kornia_compiled``: the kornia pipeline under ``torch.compile`` (ops counted eagerly do not apply: time only,
  and the graph breaks ``torch._dynamo.explain`` finds).
The candidates are timed alternately in one process, so their ratios are comparable. Then the whole CPU online step
(the config's method, RALS, N = 3, ResNet18 width 0.25, bf16 where native, the bare loop of ``run/bare.py``) with the
fused and the kornia augmentation, stream batches 3 to ``--step-batches`` timed, the two alternating batch by batch.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.data.augment import MultiViewAugment  # noqa: E402
from solo_ossl.data.datasets import CIFAR100_STATS  # noqa: E402
from solo_ossl.utils.op_count import CountOps  # noqa: E402


def kornia_views(view_cfgs, crop: int, mean, std):
    from tests.augment_reference import KorniaMultiView

    return KorniaMultiView(view_cfgs, crop, mean, std)


def torchaug_views(view_cfgs, crop: int, mean, std, n: int):
    import torchaug.transforms as T

    def view(v):
        blur = max(3, int(0.1 * crop)) | 1
        ops = [T.RandomResizedCrop(crop, (v.crop_min_scale, v.crop_max_scale), num_chunks=n, batch_transform=True)]
        ops += [T.RandomColorJitter(v.brightness, v.contrast, v.saturation, v.hue, p=v.color_jitter_prob)]
        ops += [T.RandomGrayscale(p=v.gray_scale_prob, batch_transform=True)]
        if v.gaussian_prob:
            ops += [T.RandomGaussianBlur(blur, p=v.gaussian_prob, batch_transform=True)]
        if v.solarization_prob:
            ops += [T.RandomSolarize(0.5, p=v.solarization_prob, batch_transform=True)]
        ops += [T.RandomHorizontalFlip(p=v.horizontal_flip_prob, batch_transform=True)]
        ops += [T.Normalize(mean, std)]
        for op in ops:
            if hasattr(op, "batch_transform"):
                op.batch_transform = True
        return T.Compose(ops)

    views = [view(v) for v in view_cfgs]

    @torch.no_grad()
    def augment(x):
        x = x.float() / 255
        return [view(x) for view in views]

    return augment


def compiled_kornia(view_cfgs, crop: int, mean, std):
    import torch._dynamo

    eager = kornia_views(view_cfgs, crop, mean, std)
    explanation = torch._dynamo.explain(eager)(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8))
    torch._dynamo.reset()
    return torch.compile(eager), explanation.graph_break_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--config", default="online/embedded/barlow_rals")
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--candidates", default="fused,kornia,torchaug,kornia_compiled")
    parser.add_argument("--step-batches", type=int, default=6, help="0: skip the online step's comparison")
    args = parser.parse_args()
    views = list(load_config(["--config-name", args.config]).data.augmentations)
    stats = CIFAR100_STATS
    print(f"recipe: {args.config}, {args.crop} px, two views; torch {torch.__version__}")
    print("| candidate | images | aten ops per call | ms per call (median) | note |")
    print("|---|---|---|---|---|")
    for n in (128, 384):
        images = torch.randint(0, 256, (n, 3, args.crop, args.crop), dtype=torch.uint8)
        candidates, notes = {}, {}
        for name in args.candidates.split(","):
            try:
                if name == "fused":
                    candidates[name] = MultiViewAugment(views, args.crop, *stats)
                elif name == "kornia":
                    candidates[name] = kornia_views(views, args.crop, *stats)
                elif name == "torchaug":
                    candidates[name] = torchaug_views(views, args.crop, *stats, n)
                elif name == "kornia_compiled":
                    candidates[name], breaks = compiled_kornia(views, args.crop, *stats)
                    notes[name] = f"{breaks} graph breaks"
                start = time.perf_counter()
                candidates[name](images)  # warm-up (compilation)
                notes[name] = notes.get(name, "") + f" first call {time.perf_counter() - start:.1f} s"
            except Exception as error:  # a candidate that cannot run is a result too
                candidates.pop(name, None)
                print(f"| {name} | {n} | - | - | fails: {type(error).__name__}: {str(error)[:120]} |")
        counts = {}
        for name, augment in candidates.items():
            if name == "kornia_compiled":
                continue
            with CountOps() as counter:
                augment(images)
            counts[name] = sum(counter.ops.values())
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.repeats):
            for name, augment in candidates.items():
                start = time.perf_counter()
                augment(images)
                times[name].append(1000 * (time.perf_counter() - start))
        for name in candidates:
            ops = counts.get(name, "n/a")
            print(f"| {name} | {n} | {ops} | {statistics.median(times[name]):.1f} | {notes.get(name, '').strip()} |")
    if args.step_batches:
        step_times(args.config, args.step_batches)


def step_times(config: str, batches: int) -> None:
    """Seconds per local step of the CPU online step with each augmentation, alternating stream batches."""
    import tempfile

    from solo_ossl.online import train_stream_batch
    from solo_ossl.run.bare import bare_online_run
    from solo_ossl.utils.device import autocast_dtype, resolve_precision
    from tests.augment_reference import KorniaMultiView

    overrides = ["++backbone.width=0.25", "++online.steps_per_batch=3", "++precision=auto", "++accelerator=cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(["--config-name", config, *overrides, f"++output_dir={tmp}"])
        runs = {name: bare_online_run(cfg) for name in ("fused", "kornia")}
    fused = runs["kornia"].model.augment
    runs["kornia"].model.augment = KorniaMultiView(
        list(cfg.data.augmentations),
        cfg.data.crop_size,
        *(t.flatten().tolist() for t in (fused.normalize.mean, fused.normalize.std)),
    )
    dtype = autocast_dtype(resolve_precision(cfg.precision, cfg.accelerator))
    times: dict[str, list[float]] = {name: [] for name in runs}
    streams = {name: run.batches() for name, run in runs.items()}
    for position in range(batches):
        for name, run in runs.items():
            batch = next(streams[name])
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                log, _ = train_stream_batch(run.learner, run.model, run.optimizer, batch)
            if position >= 2:  # the memory holds a full memory batch from the third stream batch on
                times[name].append((time.perf_counter() - start) / log.n_steps)
    print(f"\nCPU online step ({config}, width 0.25, N = 3, {dtype or 'fp32'}), s per local step, batches 3-{batches}:")
    print("| augmentation | s per local step (median) | each batch |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    print(f"ratio fused / kornia: {statistics.median(times['fused']) / statistics.median(times['kornia']):.2f}")


if __name__ == "__main__":
    main()
