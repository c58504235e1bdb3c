"""Issue 46's sharp test of RALS's mechanism, read from runs with ``++online.probe_heldout=P``: how much the held-out
set's loss rises within a stream batch under each selection rule, and each rule's linear top-1, per seed, with the
seed-to-seed spread and paired 95% intervals against RALS (docs/rals_mechanism.md, "The sharp test").

    python benchmarks/heldout_probe.py RUNS_DIR [--tag heldout] [--write docs/heldout_probe.md]

RUNS_DIR holds the committed rows (``<strategy>_<N>_seed<s>_<tag>/`` with ``online_steps.csv.gz``, ``stream.json``
and ``result.json``, as ``benchmarks/table1_cpu.sh`` copies them) or the runner's run folders (``online/``).
Per stream batch, the rise is the held-out loss after its last local step minus after the previous batch's last
step (the loss the batch started from); the first stream batch has no start and is left out. The within-batch curve
is the loss after each local step minus that start, averaged over the batches. The held-out images are of the first
streamed task's classes, so the rise is also split by phase (from ``stream.json``'s task ends): while that task
streams, and after it, when its classes are left in the memory only (the "memory samples never trained on" of the
account under test).
"""

import argparse
import csv
import gzip
import io
import json
import math
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solo_ossl.compare.reports import format_difference, paired_difference  # noqa: E402

RULES = {"ours": "RALS", "ours_random": "random selection", "ours_rals_step_anchor": "RALS, anchor every step"}
REFERENCE = "ours"


def run_file(run: Path, candidates: tuple[str, ...], missing: str) -> Path:
    """The first of ``candidates`` (paths in a committed row or a runner's run folder) that ``run`` holds."""
    for name in candidates:
        if (run / name).exists():
            return run / name
    raise SystemExit(f"error: {run} has no {missing}")


def step_rows(run: Path) -> list[dict]:
    path = run_file(
        run,
        ("online_steps.csv.gz", "online/online_steps.csv"),
        "online_steps.csv(.gz): is it a run with online.probe_heldout?",
    )
    text = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    return list(csv.DictReader(io.StringIO(text)))


def first_task_end(run: Path) -> int:
    """The number of stream batches of the first streamed task (the held-out set's classes), from stream.json."""
    missing = "stream.json: copy it from the run's online/ folder next to online_steps.csv.gz"
    ends = json.loads(run_file(run, ("stream.json", "online/stream.json"), missing).read_text())["task_end_batches"]
    return min(int(batches) for batches in ends)


def heldout_rises(rows: list[dict]) -> tuple[dict[int, float], list[float]]:
    """Per stream batch (from the second): the held-out loss's rise over the batch, keyed by the batch, and the mean
    curve over its local steps relative to the loss it started from."""
    by_batch: dict[int, list[float]] = {}
    for row in rows:
        if row.get("heldout_probe_loss", "") == "":
            raise SystemExit("error: a run without the held-out probe (column heldout_probe_loss is empty)")
        by_batch.setdefault(int(row["stream_batch"]), []).append(float(row["heldout_probe_loss"]))
    order = sorted(by_batch)
    rises, curves = {}, []
    for before, batch in zip(order, order[1:], strict=False):
        start, losses = by_batch[before][-1], by_batch[batch]
        rises[batch] = losses[-1] - start
        curves.append([loss - start for loss in losses])
    steps = min(len(c) for c in curves)
    curve = [statistics.mean(c[k] for c in curves) for k in range(steps)]
    return rises, curve


def mean_or_nan(values: list[float]) -> float:
    """The mean, or NaN for a phase the run does not have (a stream of the held-out task alone has no "after")."""
    return statistics.mean(values) if values else math.nan


def collect(runs_dir: Path, tag: str) -> dict[str, dict[int, dict]]:
    """{strategy: {seed: {"rise": mean rise, "rise_streaming": mean rise while the held-out classes stream,
    "rise_memory": after, "curve": [...], "top1": ..., "knn_top1": ...}}}."""
    pattern = re.compile(rf"^(?P<strategy>.+)_(?P<steps>\d+)_seed(?P<seed>\d+)_{re.escape(tag)}$")
    out: dict[str, dict[int, dict]] = {}
    for run in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        match = pattern.match(run.name)
        if not match or match["strategy"] not in RULES or not (run / "result.json").exists():
            continue
        rises, curve = heldout_rises(step_rows(run))
        end = first_task_end(run)
        result = json.loads((run / "result.json").read_text())
        out.setdefault(match["strategy"], {})[int(match["seed"])] = {
            "rise": statistics.mean(rises.values()),
            "rise_streaming": mean_or_nan([r for b, r in rises.items() if b < end]),
            "rise_memory": mean_or_nan([r for b, r in rises.items() if b >= end]),
            "curve": curve,
            "top1": result["top1"],
            "knn_top1": result["knn_top1"],
        }
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):+.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")


# The paired quantities against RALS: (key, heading, digits).
PAIRED = (
    ("rise", "rise", 4),
    ("rise_streaming", "rise while its task streams", 4),
    ("rise_memory", "rise after, memory only", 4),
    ("top1", "top-1", 2),
)


def report(runs: dict[str, dict[int, dict]], tag: str) -> str:
    lines = [f"# Held-out loss within stream batches (tag `{tag}`)", ""]
    lines += [
        "| rule | seeds | rise per stream batch (mean ± SD over seeds) | per seed | while its task streams | "
        "after, memory only | linear top-1 | kNN top-1 |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for strategy, name in RULES.items():
        seeds = runs.get(strategy, {})
        if not seeds:
            lines.append(f"| {name} | 0 | not run | | | | | |")
            continue

        def values(key: str, seeds: dict = seeds) -> list[float]:
            return [seeds[s][key] for s in sorted(seeds)]

        per_seed = ", ".join(f"{r:+.4f}" for r in values("rise"))
        lines.append(
            f"| {name} | {len(seeds)} | {spread(values('rise'))} | {per_seed} | {spread(values('rise_streaming'))} | "
            f"{spread(values('rise_memory'))} | {statistics.mean(values('top1')):.2f} | "
            f"{statistics.mean(values('knn_top1')):.2f} |"
        )
    lines += ["", f"Paired against {RULES[REFERENCE]} (per-seed differences, mean, 95% Student-t interval):", ""]
    lines += ["| rule − RALS | quantity | per seed | mean | interval |", "|---|---|---|---|---|"]
    reference = runs.get(REFERENCE, {})
    for strategy, name in RULES.items():
        if strategy == REFERENCE or not runs.get(strategy):
            continue
        for key, heading, digits in PAIRED:
            diff = paired_difference(
                {s: v[key] for s, v in runs[strategy].items()}, {s: v[key] for s, v in reference.items()}
            )
            cells = format_difference(diff, digits) if diff else ("–", "–", "–")
            lines.append(f"| {name} | {heading} | " + " | ".join(cells) + " |")
    lines += ["", "Mean curve over a stream batch's local steps (loss after step k − loss at the batch's start):", ""]
    for strategy, name in RULES.items():
        for seed, values in sorted(runs.get(strategy, {}).items()):
            lines.append(f"- {name}, seed {seed}: " + ", ".join(f"{v:+.4f}" for v in values["curve"]))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--tag", default="heldout")
    parser.add_argument("--write", type=Path, help="also write the report here")
    args = parser.parse_args()
    text = report(collect(args.runs_dir, args.tag), args.tag)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
