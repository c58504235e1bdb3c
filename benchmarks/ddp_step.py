"""Online step time on this CPU: 2 DDP processes of 1 thread against 1 process of 2 threads (not a test).

    python benchmarks/ddp_step.py [--width 0.25] [--steps 10] [--batches 6] [--pairs 2] [--selection rals]
    python benchmarks/ddp_step.py --before DIR     # 2 processes: the checkout DIR against this one, alternating

``--before`` measures what a code change costs the 2-process step (e.g. the global batch's gathers and RALS's global
top-k, against a checkout from before them: ``git worktree add DIR <commit>``).

Both run online Barlow Twins on the embedded data (global stream batch 128; with 2 processes each trains on 64 plus
half the memory batch and keeps k / 2) through ``main_pretrain.py``, alternating, and report seconds per local step
from the ``img_per_s`` rows of metrics.csv (candidates of all processes per second of the N-step loop), stream
batches 3 to the second-last.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seconds_per_step(args, processes: int, root: Path = ROOT) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            str(root / "main_pretrain.py"),
            "--config-name",
            f"online/embedded/barlow{'_rals' * (args.selection == 'rals')}",
        ]
        cmd += [
            f"++online.selection={args.selection}",
            f"++backbone.width={args.width}",
            f"++online.steps_per_batch={args.steps}",
            f"++online.max_stream_batches={args.batches}",
            "++online.skip_first_task=false",
            "++online.checkpoint_every=1000",
            "++eval.every=0",
            "++accelerator=cpu",
            "++progress_bar=false",
            f"++output_dir={tmp}",
            "++name=run",
            f"++devices={processes}",
            f"++strategy={'ddp' if processes > 1 else 'auto'}",
        ]
        env = dict(os.environ, OMP_NUM_THREADS=str(2 // processes), PYTHONPATH=str(root))
        env.update(MALLOC_MMAP_THRESHOLD_="2147483647", MALLOC_TRIM_THRESHOLD_="2147483647")
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
        if result.returncode:
            sys.exit(result.stderr[-3000:])
        metrics = next(Path(tmp, "run", "logs").glob("version_*/metrics.csv"))
        rates = [float(r["img_per_s"]) for r in csv.DictReader(metrics.open()) if r.get("img_per_s")]
        kept = rates[2:-1]
        candidates = 128 + 128 * (2 if args.selection != "none" else 1)
        return statistics.mean(candidates / r for r in kept)  # img_per_s counts every local step's candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--selection", default="rals", choices=["none", "rals"])
    parser.add_argument("--before", type=Path, help="a checkout to compare with this one, both on 2 processes")
    args = parser.parse_args()
    if args.before is not None:
        compare_code(args)
        return
    runs = {1: [], 2: []}
    for _ in range(args.pairs):
        for processes in (1, 2):
            runs[processes].append(seconds_per_step(args, processes))
            print(f"{processes} process(es): {runs[processes][-1]:.3f} s/step", flush=True)
    one, two = min(runs[1]), min(runs[2])
    print(
        f"selection={args.selection}, width {args.width}, N={args.steps}: 1 process x 2 threads {one:.3f} s/step, "
        f"2 DDP processes x 1 thread {two:.3f} s/step, ratio 2-process / 1-process {two / one:.2f}"
    )


def compare_code(args) -> None:
    runs = {"before": [], "this": []}
    for _ in range(args.pairs):
        for name, root in (("before", args.before.resolve()), ("this", ROOT)):
            runs[name].append(seconds_per_step(args, 2, root))
            print(f"{name} ({root}), 2 processes: {runs[name][-1]:.3f} s/step", flush=True)
    before, this = min(runs["before"]), min(runs["this"])
    print(
        f"selection={args.selection}, width {args.width}, N={args.steps}, 2 DDP processes x 1 thread: before "
        f"{before:.3f} s/step, this checkout {this:.3f} s/step, ratio this / before {this / before:.2f}"
    )


if __name__ == "__main__":
    main()
