"""The tables of docs/table1_cpu.md from the committed result rows (docs/table1_cpu/<method>/), so that no number in
the document is copied by hand: mean ± std beside the paper's CIFAR-100 numbers, the paired differences with their
95% t-intervals, the per-seed task-1 starts, and the seed-mean accuracy matrices of Ours and CaSSLe.

    python benchmarks/table1_cpu_tables.py barlow simclr            # print
    python benchmarks/table1_cpu_tables.py barlow simclr --write    # replace the block between the markers in
                                                                    # docs/table1_cpu.md
    python benchmarks/table1_cpu_tables.py simclr-epyc-avx512 --untagged --block epyc-avx512 --write
                                                                    # a block of its own, without tagged runs
    python benchmarks/table1_cpu_tables.py --pool simclr-epyc-avx512:0,1 simclr:2 --block pooled-n20 --write
                                                                    # the N = 10/20 pairs, each seed from its set
    python benchmarks/table1_cpu_tables.py --across barlow barlow-g8 barlow-g32 --block groups --write
                                                                    # the pairs of sets that differ in one setting,
                                                                    # paired by seed with the first set's
"""

import argparse
import csv
import gzip
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.compare.reports import (  # noqa: E402
    by_cell,
    cell_of,
    format_difference,
    label,
    load_results,
    mean_matrix,
    mean_std,
    paired_difference,
    paired_rows,
    paired_table,
    sort_key,
)
from solo_ossl.compare.runner import METRICS  # noqa: E402
from solo_ossl.compare.strategies import PAIRS  # noqa: E402

# The paper's Table 1, CIFAR-100, 10 steps (linear top-1, %).
PAPER = {
    "barlow": {"offline": 48.50, "cassle": 50.89, "ours_no_rals": 55.39, "ours": 55.75},
    "simclr": {"offline": 50.68, "cassle": 49.48, "ours_no_rals": 50.39, "ours": 50.63},
}
# The pairs whose value at N = 20 is set beside N = 10 (does RALS's gain grow with N?).
BY_STEPS = (("ours", "ours_no_rals"), ("ours", "ours_random"), ("ours", "cassle"))


def probes(folder: Path) -> dict[int, dict]:
    return {int(p.stem.removeprefix("probe_seed")): json.loads(p.read_text()) for p in folder.glob("probe_seed*.json")}


def stream_shares(folder: Path, first_batch: int = 2) -> dict[int, dict[int, float]]:
    """One run's stream share among the selected, by stream batch and local step, from the third stream batch on
    (the memory holds a full memory batch by then); steps without a selection are left out."""
    shares: dict[int, dict[int, float]] = {}
    with gzip.open(folder / "online_steps.csv.gz", "rt") as f:
        for row in csv.DictReader(f):
            if int(row["stream_batch"]) >= first_batch and row["stream_selected_ratio"] != "":
                shares.setdefault(int(row["stream_batch"]), {})[int(row["step"])] = float(row["stream_selected_ratio"])
    return shares


def stream_share_by_step(runs: list[dict[int, dict[int, float]]]) -> list[float]:
    """RALS's stream share at each local step, averaged over the runs' stream batches and over the runs."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for steps in run.values():
            for step, share in steps.items():
                by_step.setdefault(step, []).append(share)
    return [statistics.mean(by_step[step]) for step in sorted(by_step)]


def stream_share_drift(run: dict[int, dict[int, float]]) -> tuple[float, float, int]:
    """Within-batch drift of one run's stream share: per stream batch, the share at its last local step minus the
    share at its first; returns the mean over the batches, its standard error and their count. Under RALS the paper
    expects a negative drift (the model learns the stream batch, Fig. 3(b))."""
    drifts = [steps[max(steps)] - steps[min(steps)] for steps in run.values() if len(steps) > 1]
    return statistics.mean(drifts), statistics.stdev(drifts) / len(drifts) ** 0.5, len(drifts)


def seed_change(before: dict | None, after: dict | None) -> dict | None:
    """A pair's per-seed change between two settings (e.g. RALS's gain at N = 20 minus the same seed's gain at
    N = 10): paired by seed, so each seed's task-1 start cancels."""
    if before is None or after is None:
        return None
    per_seed = [dict(zip(d["seeds"], d["diffs"], strict=True)) for d in (after, before)]
    return paired_difference(*per_seed)


def brief(diff: dict | None) -> str:
    """A paired difference as one cell: mean [95% interval] (seeds)."""
    if diff is None:
        return "–"
    _, mean, interval = format_difference(diff)
    return f"{mean} {interval} ({len(diff['diffs'])})"


def paired_lines(cells: dict, pairs) -> list[str]:
    """The paired differences of linear top-1 for ``pairs``, one table row per pair and N."""
    return ["", "Paired differences of linear top-1 (per seed; mean; 95% t-interval):", "", *paired_table(cells, pairs)]


def seed_top1s(cells: dict, ordered: list, seed: int) -> list[str]:
    """One seed's linear top-1 in each of the ``ordered`` cells (– where that seed has no run)."""
    return [f"{cells[c][seed]['top1']:.2f}" if seed in cells[c] else "–" for c in ordered]


def by_steps_lines(cells: dict) -> list[str]:
    """The BY_STEPS pairs at each N beside each other, and each pair's per-seed change from the smallest N."""
    steps = sorted({c[1] for c in cells if not c[2]})
    if len(steps) < 2:
        return []
    by_pair = {(a[0], b[0], a[1]): diff for a, b, diff in paired_rows(cells, BY_STEPS) if not a[2]}
    lines = ["", f"The same pairs at each N, and how each pair changes from N = {steps[0]} (per seed: the pair at N"]
    lines += [f"minus the same seed's pair at N = {steps[0]}; mean [95% t-interval] (seeds)):", ""]
    growth = [f"N = {n} − N = {steps[0]}" for n in steps[1:]]
    header = [f"N = {n}" for n in steps] + growth
    lines += ["| pair | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for a, b in BY_STEPS:
        diffs = [by_pair.get((a, b, n)) for n in steps]
        changes = [seed_change(diffs[0], later) for later in diffs[1:]]
        entries = [brief(d) for d in diffs + changes]
        lines.append(f"| {label((a, 0, ''))} − {label((b, 0, ''))} | " + " | ".join(entries) + " |")
    return lines


def pair_rows(folder: Path) -> list[dict]:
    """A set's rows of the BY_STEPS strategies, without the runs of a setting of their own (a tag)."""
    strategies = {name for pair in BY_STEPS for name in pair}
    return [r for r in load_results(folder) if not r.get("tag") and r["strategy"] in strategies]


def check_one_start(rows: list[dict], where: str) -> None:
    """Refuses a seed whose ``rows`` did not all start from one task-1 checkpoint on one machine: its pairs would
    compare other starting weights."""
    starts: dict[int, set] = {}
    for r in rows:
        starts.setdefault(r["seed"], set()).add((r["task1_fingerprint"], r["machine"]))
    for seed, seen in sorted(starts.items()):
        if len(seen) > 1:
            sys.exit(f"error: seed {seed}'s rows {where} started from {len(seen)} task-1 checkpoints; they do not pair")


def pooled_tables(sources: list[tuple[str, Path, list[int]]]) -> list[str]:
    """The BY_STEPS pairs with each seed taken from a set of its own (SET:SEEDS): where a seed's task-1 checkpoint
    could only be retrained on another kind of CPU, its N = 10 and N = 20 rows come from that machine's set, so that
    each seed's pairs stay like for like while the seeds are pooled. Refuses a seed named twice, and a seed whose
    rows did not all start from one task-1 checkpoint."""
    cells: dict = {}
    origin: dict[int, tuple[str, str, str]] = {}  # seed: (set, task-1 fingerprint, machine)
    for name, folder, seeds in sources:
        rows = [r for r in pair_rows(folder) if r["seed"] in seeds]
        check_one_start(rows, f"in {name}")
        for r in rows:
            seed = r["seed"]
            if origin.setdefault(seed, (name, r["task1_fingerprint"], r["machine"]))[0] != name:
                sys.exit(f"error: seed {seed} is named in {origin[seed][0]} and {name}; give each seed one set")
            cells.setdefault(cell_of(r), {})[seed] = r
    ordered = sorted(cells, key=sort_key)
    named = [f"seed{'s' if len(s) > 1 else ''} {','.join(map(str, s))} from {n}" for n, _, s in sources]
    lines = ["### Pooled: " + ", ".join(named), ""]
    lines += ["Per seed, linear top-1 (%), with the set, machine and task-1 checkpoint (fingerprint) of its rows:", ""]
    lines += ["| seed | set | machine | task-1 | " + " | ".join(f"{label(c)}, {c[1]}" for c in ordered) + " |"]
    lines += ["|---|---|---|---|" + "---|" * len(ordered)]
    for seed, (name, fingerprint, machine) in sorted(origin.items()):
        entries = seed_top1s(cells, ordered, seed)
        lines.append(f"| {seed} | {name} | {machine} | `{fingerprint}` | " + " | ".join(entries) + " |")
    lines += paired_lines(cells, BY_STEPS)
    return lines + by_steps_lines(cells) + [""]


def across_sets_tables(sources: list[tuple[str, Path]]) -> list[str]:
    """The BY_STEPS pairs in sets that differ by one setting (Barlow Twins' scoring unit: barlow, barlow-g8,
    barlow-g32), each set's beside the first set's, paired by seed, and then each of their rows beside the first
    set's same row. A seed must start from one task-1 checkpoint on one machine in every set, or its pairs would not
    compare; this refuses otherwise."""
    rows_by_set = {name: pair_rows(folder) for name, folder in sources}
    check_one_start([r for rows in rows_by_set.values() for r in rows], "across these sets")
    cells_by_set = {name: by_cell(rows) for name, rows in rows_by_set.items()}
    first = sources[0][0]
    diffs = {
        (name, a[0], b[0], a[1]): diff
        for name, cells in cells_by_set.items()
        for a, b, diff in paired_rows(cells, BY_STEPS)
    }
    lines = ["### Across sets: " + ", ".join(name for name, _ in sources), ""]
    lines += [f"Each pair in each set, and its per-seed change from {first}'s (mean [95% t-interval] (seeds)):", ""]
    lines += [f"| pair | steps | set | per-seed differences | mean | − {first}'s |", "|---|---|---|---|---|---|"]
    for a, b, steps in sorted({key[1:] for key in diffs}, key=lambda k: (BY_STEPS.index(k[:2]), k[2])):
        for name, _ in sources:
            diff = diffs.get((name, a, b, steps))
            if diff is None:
                continue
            change = "" if name == first else brief(seed_change(diffs.get((first, a, b, steps)), diff))
            per_seed, mean, interval = format_difference(diff)
            pair = f"{label((a, 0, ''))} − {label((b, 0, ''))}"
            lines.append(
                f"| {pair} | {steps} | {name} | {per_seed} | {mean} {interval} ({len(diff['diffs'])}) | {change} |"
            )
    # Each row beside the first set's same row: where one strategy's runs ignore the setting (random selection does
    # not score), the setting's effect shows on the other row alone.
    lines += ["", f"Each row's linear top-1 in each set, and its per-seed change from {first}'s same row:", ""]
    lines += [f"| row | steps | set | per-seed top-1 | − {first}'s |", "|---|---|---|---|---|"]
    for cell in sorted({c for cells in cells_by_set.values() for c in cells}, key=sort_key):
        first_top1 = {seed: r["top1"] for seed, r in cells_by_set[first].get(cell, {}).items()}
        for name, _ in sources:
            top1 = {seed: r["top1"] for seed, r in cells_by_set[name].get(cell, {}).items()}
            if not top1:
                continue
            change = "" if name == first else brief(paired_difference(top1, first_top1))
            per_seed = ", ".join(f"{top1[seed]:.2f}" for seed in sorted(top1))
            lines.append(f"| {label(cell)} | {cell[1]} | {name} | {per_seed} | {change} |")
    return lines + [""]


def method_tables(method: str, folder: Path, untagged: bool = False) -> list[str]:
    results = load_results(folder)
    if untagged:  # leave out the runs of a setting of their own (--tag: the truncated mechanism runs)
        results = [r for r in results if not r.get("tag")]
    cells = by_cell(results)
    ordered = sorted(cells, key=sort_key)
    starts, randoms = probes(folder / "task1"), probes(folder / "random_init")
    seeds = sorted({s for by_seed in cells.values() for s in by_seed})
    lines = [f"### {method}: seeds {', '.join(map(str, seeds))}", ""]
    lines += [
        "| strategy | steps | seeds | linear top-1 | kNN top-1 | A | F | FT | train s | paper (CIFAR-100, 10 steps) |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|"]
    for name, by_seed in (("random backbone", randoms), ("task-1 start (50 epochs)", starts)):
        rows = [by_seed[s] for s in seeds if s in by_seed]
        entries = [mean_std([r["top1"] for r in rows]), mean_std([r["knn_top1"] for r in rows])]
        lines.append(f"| {name} | | {len(rows)} | " + " | ".join(entries) + " | | | | | |")
    for cell in ordered:
        rows = list(cells[cell].values())
        entries = [mean_std([r[k] for r in rows if r.get(k) is not None]) for k in ("top1", "knn_top1", *METRICS)]
        seconds = statistics.mean(r["train_seconds"] for r in rows)
        paper = PAPER.get(method.split("-")[0], {}).get(cell[0]) if cell[1] == 10 and not cell[2] else None
        lines.append(
            f"| {label(cell)} | {cell[1]} | {len(rows)} | "
            + " | ".join(entries)
            + f" | {seconds:.0f} | {'' if paper is None else f'{paper:.2f}'} |"
        )
    lines += ["", "Per seed, linear top-1 (%):", ""]
    lines += ["| seed | task-1 start | " + " | ".join(f"{label(c)}, {c[1]}" for c in ordered) + " |"]
    lines += ["|---|---|" + "---|" * len(ordered)]
    for seed in seeds:
        start = f"{starts[seed]['top1']:.2f}" if seed in starts else "–"
        entries = seed_top1s(cells, ordered, seed)
        lines.append(f"| {seed} | {start} | " + " | ".join(entries) + " |")
    lines += paired_lines(cells, PAIRS)
    lines += by_steps_lines(cells)
    for cell in ordered:
        if cell[0] not in ("ours", "cassle"):
            continue
        folders = [r["folder"] for r in cells[cell].values() if (r["folder"] / "task_matrix.csv").exists()]
        if not folders:
            continue
        matrix = mean_matrix(folders)
        lines += ["", f"{label(cell)}, {cell[1]} steps: linear accuracy matrix, mean over {len(folders)} seed(s) (%)"]
        lines += ["", "| after | " + " | ".join(f"task {i + 1}" for i in range(len(matrix))) + " |"]
        lines += ["|---|" + "---|" * len(matrix)]
        lines += [f"| {t + 1} | " + " | ".join(f"{a:.2f}" for a in row) + " |" for t, row in enumerate(matrix)]
    for cell in ordered:
        if cell[0] not in ("ours", "ours_random"):
            continue
        shares = {
            seed: stream_shares(r["folder"])
            for seed, r in sorted(cells[cell].items())
            if (r["folder"] / "online_steps.csv.gz").exists()
        }
        if not shares:
            continue
        by_step = stream_share_by_step(list(shares.values()))
        lines += ["", f"{label(cell)}, {cell[1]} steps: stream share among the selected by local step (random: 1/3),"]
        lines += [f"mean over {len(shares)} seed(s) and the stream batches from the third on", ""]
        shown = shown_steps(len(by_step))
        lines += ["| step | " + " | ".join(map(str, shown)) + " |", "|---|" + "---|" * len(shown)]
        lines += ["| share | " + " | ".join(f"{by_step[step]:.3f}" for step in shown) + " |"]
        lines += ["", f"{label(cell)}, {cell[1]} steps: last − first local step's stream share, per stream batch from"]
        lines += ["the third on (mean ± standard error over the batches):", ""]
        lines += ["| seed | batches | drift |", "|---|---|---|"]
        for seed, run in shares.items():
            mean, stderr, batches = stream_share_drift(run)
            lines.append(f"| {seed} | {batches} | {mean:+.4f} ± {stderr:.4f} |")
    return lines + [""]


def shown_steps(steps: int) -> list[int]:
    """The local steps a share-by-step table shows: all of them up to 20, else every tenth of the way and the last
    (a table of 50 columns does not read)."""
    stride = 1 if steps <= 20 else steps // 10
    return sorted({*range(0, steps, stride), steps - 1})


def markers(block: str | None) -> tuple[str, str]:
    """The comments around a generated block of docs/table1_cpu.md; a named block has its own."""
    name = f" {block}" if block else ""
    return f"<!-- generated by benchmarks/table1_cpu_tables.py{name}: begin -->", f"<!-- generated{name}: end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", help="sets of rows: folders under --docs (barlow, simclr-epyc-avx512)")
    parser.add_argument(
        "--pool", nargs="+", metavar="SET:SEEDS", help="instead: the N = 10/20 pairs, seeds taken from sets (simclr:2)"
    )
    parser.add_argument(
        "--across",
        nargs="+",
        metavar="SET",
        help="instead: the pairs in each set beside the first set's (barlow barlow-g8)",
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "table1_cpu")
    parser.add_argument("--write", action="store_true", help="into docs/table1_cpu.md, between its markers")
    parser.add_argument("--block", default=None, help="write the block of this name (its own markers)")
    parser.add_argument("--untagged", action="store_true", help="leave out runs with a tag (the mechanism runs)")
    args = parser.parse_args()
    if sum(map(bool, (args.methods, args.pool, args.across))) != 1:
        parser.error("name sets of rows, or --pool SET:SEEDS ..., or --across SET ...: one of the three")
    if args.across:
        missing = [name for name in args.across if not (args.docs / name).is_dir()]
        if missing:
            sys.exit(f"error: --across {' '.join(missing)}: no such set under {args.docs}; name its folders")
        lines = across_sets_tables([(name, args.docs / name) for name in args.across])
    elif args.pool:
        sources = []
        for item in args.pool:
            name, _, seeds = item.partition(":")
            if not (args.docs / name).is_dir() or not re.fullmatch(r"\d+(,\d+)*", seeds):
                sys.exit(f"error: --pool {item}: give SET:SEEDS with SET a folder under {args.docs} (e.g. simclr:2)")
            sources.append((name, args.docs / name, [int(s) for s in seeds.split(",")]))
        lines = pooled_tables(sources)
    else:
        lines = [
            line
            for method in args.methods
            if (args.docs / method).is_dir()
            for line in method_tables(method, args.docs / method, args.untagged)
        ]
    text = "\n".join(lines)
    if not args.write:
        print(text)
        return
    doc = args.docs.parent / "table1_cpu.md"
    begin, end = markers(args.block)
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc.read_text()):
        sys.exit(f"error: {doc} has no {begin} ... {end} block to replace; add the two markers where the tables go")
    doc.write_text(pattern.sub(lambda _: f"{begin}\n\n{text}\n{end}", doc.read_text()))


if __name__ == "__main__":
    main()
