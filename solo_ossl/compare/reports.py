"""Reports of a comparison folder: ``results.csv``, a Table-1-style ``results.md`` and ``results.png``, from every
finished run in it. Cells are keyed by (strategy, N, tag) and hold one result per seed."""

import csv
import json
import math
import statistics
from pathlib import Path

from solo_ossl.compare.runner import METRICS
from solo_ossl.compare.strategies import PAIRS, STRATEGIES

FIELDS = [
    "strategy",
    "steps",
    "seed",
    "tag",
    "epochs",
    "top1",
    "top5",
    "knn_top1",
    "knn_top5",
    *METRICS,
    *(f"knn_{m}" for m in METRICS),
    "probe",
    "train_seconds",
    "images_forward",
    "images_backward",
    "training_images",
    "forwards_per_image",
    "backwards_per_image",
    "checkpoint",
    "task1_fingerprint",
    "machine",
]

Cell = tuple[str, int, str]  # strategy, steps, tag


def load_results(folder: Path) -> list[dict]:
    """Every finished run in ``folder`` (``*_seed*/result.json``), with its folder under ``"folder"``."""
    return [
        {**json.loads(path.read_text()), "folder": path.parent} for path in sorted(folder.glob("*_seed*/result.json"))
    ]


def cell_of(result: dict) -> Cell:
    return result["strategy"], result["steps"], result.get("tag", "")


def by_cell(results: list[dict]) -> dict[Cell, dict[int, dict]]:
    """{(strategy, steps, tag): {seed: result}}."""
    cells: dict[Cell, dict[int, dict]] = {}
    for r in results:
        cells.setdefault(cell_of(r), {})[r["seed"]] = r
    return cells


def label(cell: Cell) -> str:
    """A row's name: its strategy's label, or the strategy's key where this code does not know it (a run folder that
    a newer version, or a registry of the user's own, wrote into the same output folder)."""
    strategy, _, tag = cell
    known = STRATEGIES.get(strategy)
    return (known.label if known else strategy) + (f" [{tag}]" if tag else "")


def sort_key(cell: Cell) -> tuple:
    """Rows by N, tag, then the registry's order; strategies this code does not know come last, by name."""
    strategy, steps, tag = cell
    order = list(STRATEGIES)
    return steps, tag, order.index(strategy) if strategy in order else len(order), strategy


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """Per-seed differences a - b over the seeds both have, their mean and 95% Student-t interval."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return {"seeds": seeds, "diffs": diffs, "mean": mean, "low": math.nan, "high": math.nan}
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"seeds": seeds, "diffs": diffs, "mean": mean, "low": mean - half, "high": mean + half}


def format_difference(diff: dict, digits: int = 2) -> tuple[str, str, str]:
    """(per-seed differences, mean, 95% interval) as table cells, with ``digits`` decimals."""
    f = f"+.{digits}f"
    interval = "–" if math.isnan(diff["low"]) else f"[{diff['low']:{f}}, {diff['high']:{f}}]"
    return ", ".join(f"{d:{f}}" for d in diff["diffs"]), f"{diff['mean']:{f}}", interval


def paired_rows(cells: dict[Cell, dict[int, dict]], pairs=PAIRS, key: str = "top1") -> list[tuple[Cell, Cell, dict]]:
    """The paired differences a − b of ``key`` for every pair of rows present at the same N and tag."""
    rows = []
    for steps, tag in sorted({(c[1], c[2]) for c in cells}):
        for a, b in pairs:
            ca, cb = (a, steps, tag), (b, steps, tag)
            if ca in cells and cb in cells:
                diff = paired_difference(
                    {s: r[key] for s, r in cells[ca].items()}, {s: r[key] for s, r in cells[cb].items()}
                )
                if diff is not None:
                    rows.append((ca, cb, diff))
    return rows


def paired_table(cells: dict[Cell, dict[int, dict]], pairs=PAIRS) -> list[str]:
    """The paired differences of linear top-1 as a markdown table: one row per pair and N."""
    lines = ["| steps | pair | per-seed differences | mean | 95% interval |", "|---|---|---|---|---|"]
    for a, b, diff in paired_rows(cells, pairs):
        lines.append(f"| {a[1]} | {label(a)} − {label(b)} | " + " | ".join(format_difference(diff)) + " |")
    return lines


def mean_matrix(folders: list[Path], probe: str = "linear") -> list[list[float]]:
    """The mean over runs of their accuracy matrices (``task_matrix.csv``)."""
    entries: dict[tuple[int, int], list[float]] = {}
    for folder in folders:
        with (Path(folder) / "task_matrix.csv").open() as f:
            for row in csv.DictReader(f):
                if row["probe"] == probe:
                    entries.setdefault((int(row["after_task"]), int(row["task"])), []).append(float(row["accuracy"]))
    size = max(t for t, _ in entries)
    return [[statistics.mean(entries[(t, i)]) for i in range(1, size + 1)] for t in range(1, size + 1)]


def _count(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 100_000 else f"{n / 1e3:.1f} k"


def write_reports(results: list[dict], output_dir: Path, title: str, baselines: dict) -> None:
    cells = by_cell(results)
    ordered = sorted(cells, key=sort_key)
    with (output_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(cells[c][s] for c in ordered for s in sorted(cells[c]))
    columns = sorted({(c[1], c[2]) for c in cells})
    rows = sorted({(c[0], c[2]) for c in cells}, key=lambda r: (r[1], list(STRATEGIES).index(r[0])))
    steps = sorted({c[1] for c in cells})

    def values(cell: Cell, key: str) -> list[float]:
        return [r[key] for r in cells.get(cell, {}).values() if r.get(key) is not None]

    def accuracy_table(heading: str, key: str) -> list[str]:
        header = ["", heading, "", "| strategy | " + " | ".join(f"{n} steps" for n in steps) + " |"]
        lines = [
            f"| {label((s, 0, tag))} | " + " | ".join(mean_std(values((s, n, tag), key)) for n in steps) + " |"
            for s, tag in rows
        ]
        return [*header, "|---|" + "---|" * len(steps), *lines]

    seeds = sorted({r["seed"] for r in results})
    lines = [
        f"# {title}",
        "",
        f"Seeds: {', '.join(map(str, seeds))}. Cells are mean ± std over seeds (one value: one seed).",
        *accuracy_table("## Linear top-1 (%)", "top1"),
        "",
        f"Baselines (linear / kNN top-1): random backbone {mean_std(baselines['random']['top1'])} / "
        f"{mean_std(baselines['random']['knn_top1'])}; task-1 start {mean_std(baselines['task1']['top1'])} / "
        f"{mean_std(baselines['task1']['knn_top1'])}.",
        *accuracy_table("## kNN top-1 (%), k = 20, T = 0.07", "knn_top1"),
        "",
        "## Average accuracy A, forgetting F, forward transfer FT (linear probe, %)",
        "",
        "| strategy | steps | A | F | FT | kNN A | kNN F | kNN FT |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in ordered:
        if values(cell, "average"):
            entries = [mean_std(values(cell, m)) for m in (*METRICS, *(f"knn_{m}" for m in METRICS))]
            lines.append(f"| {label(cell)} | {cell[1]} | " + " | ".join(entries) + " |")
    lines += ["", "## Paired differences of linear top-1 (per seed; mean and 95% t-interval)", ""]
    lines += paired_table(cells)
    lines += [
        "",
        "## Compute per run (mean over seeds)",
        "",
        "| strategy | steps | epochs | train s | image-views forwarded | back-propagated | per training image (fwd / bwd) |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in ordered:
        runs = list(cells[cell].values())
        epochs = runs[0].get("epochs")
        mean = {k: statistics.mean(r[k] for r in runs) for k in ("train_seconds", "images_forward", "images_backward")}
        lines.append(
            f"| {label(cell)} | {cell[1]} | {epochs if epochs is not None else '–'} | {mean['train_seconds']:.0f} | "
            f"{_count(mean['images_forward'])} | {_count(mean['images_backward'])} | {per_image(runs)} |"
        )
    (output_dir / "results.md").write_text("\n".join(lines) + "\n")
    plot_results(cells, columns, output_dir / "results.png", title)


def per_image(runs: list[dict]) -> str:
    """Image-views forwarded and back-propagated per training image, mean over seeds ('–' for results recorded
    before the runner wrote them)."""
    if any("forwards_per_image" not in r for r in runs):
        return "–"
    forward, backward = (statistics.mean(r[k] for r in runs) for k in ("forwards_per_image", "backwards_per_image"))
    return f"{forward:.1f} / {backward:.1f}"


def plot_results(cells: dict[Cell, dict[int, dict]], columns, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 4.0))
    for strategy, tag in sorted({(c[0], c[2]) for c in cells}, key=lambda r: (r[1], list(STRATEGIES).index(r[0]))):
        points = []
        for n in sorted({c[1] for c in cells}):
            vals = [r["top1"] for r in cells.get((strategy, n, tag), {}).values()]
            if vals:
                points.append((n, statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0))
        if points:
            x, y, err = zip(*points, strict=True)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label((strategy, 0, tag)))
    ax.set(xlabel="steps (epochs per task / optimizer steps per stream batch)", ylabel="linear top-1 (%)", title=title)
    ax.set_xticks(sorted({c[1] for c in cells}))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
