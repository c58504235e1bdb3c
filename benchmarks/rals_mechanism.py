"""What RALS picks, from the candidate logs of instrumented runs (``++online.log_candidates=true``): the tables of
docs/rals_mechanism.md.

    python benchmarks/rals_mechanism.py RUNS_DIR [--tag mechanism] [--write docs/rals_mechanism_tables.md]

RUNS_DIR holds the comparison runner's run folders (``<strategy>_<N>_seed<s>_<tag>/``, each with
``online/online_candidates.npz``, ``online/class_order.json`` and ``result.json``), or their committed copies under
``docs/table1_cpu/<method>-<set>/`` (the log beside ``result.json``; the split is then CaSSLe's default, the one every
table run uses). For each instrumented run:
- the share kept, and the mean current loss, anchor loss and score (current - anchor) of kept and dropped candidates,
  by source (stream / memory) and by the task a candidate came from relative to the stream batch's task;
- how much of RALS's choice the hardness rules would also have chosen, from the same step's logged scores: the share
  of the kept units that are among the top-k of the current loss, and of the anchor loss;
- the rank correlation (Spearman) of the score with the current loss and with the anchor loss;
- per local step, the gradient norm and the update norm;
- whether the rule keeps choosing the same stream samples over a stream batch's local steps, and how many same-class
  pairs (SimCLR negatives of one class) it keeps against a random choice;
- the rules side by side, one row per run, and the start-of-batch model's loss on the candidates over the stream.
Then every run's linear and kNN top-1 (and per-task linear accuracy) from its result.json and task matrix.
"""

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from solo_ossl.args.schema import DataConfig
from solo_ossl.data.tasks import class_order, split_tasks


def candidate_log(run: Path) -> Path | None:
    for path in (run / "online" / "online_candidates.npz", run / "online_candidates.npz"):
        if path.exists():
            return path
    return None


def task_classes(run: Path) -> list[list[int]]:
    recorded = run / "online" / "class_order.json"
    if recorded.exists():
        return json.loads(recorded.read_text())["tasks"]
    data = DataConfig()
    return split_tasks(class_order(100, data.class_order_seed, data.class_order), data.num_tasks)


def load(run: Path) -> dict:
    data = dict(np.load(candidate_log(run)))
    tasks = task_classes(run)
    task_of = np.full(max(max(t) for t in tasks) + 1, -1)
    for i, classes in enumerate(tasks):
        task_of[classes] = i + 1
    data["task"] = task_of[data["label"]]
    return data


def stream_task(data: dict) -> np.ndarray:
    """Each row's stream batch's task: the task of that batch's stream samples (one task per batch, class-incremental)."""
    batches = data["stream_batch"]
    out = np.zeros_like(batches)
    for batch in np.unique(batches):
        rows = batches == batch
        out[rows] = np.bincount(data["task"][rows & data["is_stream"]]).argmax()
    return out


def groups(data: dict) -> dict[str, np.ndarray]:
    scored = ~np.isnan(data["current"])
    age = stream_task(data) - data["task"]
    return {
        "stream": scored & data["is_stream"],
        "memory, the current task": scored & ~data["is_stream"] & (age == 0),
        "memory, the previous task": scored & ~data["is_stream"] & (age == 1),
        "memory, older tasks": scored & ~data["is_stream"] & (age >= 2),
        "all": scored,
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def step_blocks(data: dict):
    """(start, end) row ranges of each logged local step, in log order."""
    keys = data["stream_batch"].astype(np.int64) * 1000 + data["step"]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    return zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True)


def overlap_with_hardness(data: dict) -> tuple[float, float, float]:
    """Per scored step: the share of the kept candidates among the top-k current loss and among the top-k anchor
    loss (k = kept), and a random choice's expected share (k / candidates); means over the steps."""
    shares = {"current": [], "anchor": [], "random": []}
    for start, end in step_blocks(data):
        chosen = data["kept"][start:end]
        k = int(chosen.sum())
        if np.isnan(data["current"][start]) or k in (0, end - start):
            continue
        for name in ("current", "anchor"):
            top = np.zeros_like(chosen)
            top[np.argsort(-data[name][start:end], kind="stable")[:k]] = True
            shares[name].append((top & chosen).sum() / k)
        shares["random"].append(k / (end - start))
    return tuple(float(np.mean(shares[n])) for n in ("current", "anchor", "random"))


def stream_persistence(data: dict, first_batch: int = 2) -> dict[str, float]:
    """Whether a rule keeps choosing the same stream samples: the stream batch's samples are the same candidates, in
    the same order, at each of its local steps (on fresh views). Over consecutive scored steps, the share of the
    stream samples kept at a step that are kept again at the next, and of the dropped ones that are kept at the next
    (both k / candidates for a random choice); and the spread (standard deviation) of how many scored steps each
    stream sample was trained at. From the stream batch ``first_batch`` on, when the memory holds a full batch."""
    kept_again, dropped_then_kept, counts = [], [], []
    per_batch: dict[int, list[np.ndarray]] = {}
    for start, end in step_blocks(data):
        batch = int(data["stream_batch"][start])
        if batch >= first_batch and not np.isnan(data["current"][start]):
            per_batch.setdefault(batch, []).append(data["kept"][start:end][data["is_stream"][start:end]])
    for steps in per_batch.values():
        kept = np.stack(steps)
        before, after = kept[:-1], kept[1:]
        if before.any():
            kept_again.append((before & after).sum() / before.sum())
        if (~before).any():
            dropped_then_kept.append((~before & after).sum() / (~before).sum())
        counts.append(kept.sum(0))
    return {
        "kept_again": float(np.mean(kept_again)),
        "dropped_then_kept": float(np.mean(dropped_then_kept)),
        "count_std": float(np.concatenate(counts).std()),
    }


def same_class_pairs(data: dict) -> tuple[float, float]:
    """Per scored step, the pairs of kept candidates of one class (a SimCLR negative that is really a positive), and
    what a random choice of as many candidates would keep on average; means over the steps."""
    kept_pairs, random_pairs = [], []
    for start, end in step_blocks(data):
        if np.isnan(data["current"][start]):
            continue
        labels, kept = data["label"][start:end], data["kept"][start:end]
        n, k = end - start, int(kept.sum())
        _, every = np.unique(labels, return_counts=True)
        _, chosen = np.unique(labels[kept], return_counts=True)
        kept_pairs.append((chosen * (chosen - 1) / 2).sum())
        random_pairs.append((every * (every - 1) / 2).sum() * k * (k - 1) / (n * (n - 1)))
    return float(np.mean(kept_pairs)), float(np.mean(random_pairs))


def loss_trajectory(data: dict, window: int = 8) -> list[float]:
    """The start-of-batch model's mean loss on every scored candidate (the anchor loss, whatever a rule keeps),
    per window of ``window`` stream batches: when a rule's model pulls away from another's."""
    scored = ~np.isnan(data["anchor"])
    batches = data["stream_batch"][scored]
    sums = np.bincount(batches, weights=data["anchor"][scored])
    counts = np.bincount(batches)
    return [float(sums[i : i + window].sum() / counts[i : i + window].sum()) for i in range(0, len(counts), window)]


def trajectory_table(runs: list[tuple[str, dict, dict]], window: int = 8) -> list[str]:
    curves = {name: loss_trajectory(data, window) for name, data, _ in runs}
    windows = max(len(c) for c in curves.values())
    lines = [
        f"### The start-of-batch model's loss on the candidates, per window of {window} stream batches",
        "",
        "| run | " + " | ".join(f"{i * window}-{(i + 1) * window - 1}" for i in range(windows)) + " |",
        "|---|" + "---|" * windows,
    ]
    for name, curve in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in curve) + " |")
    return lines + [""]


def comparison_table(runs: list[tuple[str, dict, dict]]) -> list[str]:
    """One row per logged run: how its kept candidates differ from its dropped ones (mean loss, kept − dropped), the
    start-of-batch model's loss on every candidate (the anchor loss, whatever the rule keeps: how well the model
    fits the stream), stream persistence, same-class pairs, the mean gradient norm, and the run's top-1."""
    lines = [
        "### The rules side by side",
        "",
        "| run | current loss, kept − dropped | anchor loss, kept − dropped | anchor loss, all candidates | "
        "stream kept again / dropped then kept | spread of steps per stream sample | same-class pairs kept / random | "
        "gradient norm | linear / kNN top-1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data, result in runs:
        scored = ~np.isnan(data["current"])
        kept, dropped = scored & data["kept"], scored & ~data["kept"]
        persistence = stream_persistence(data)
        pairs, random_pairs = same_class_pairs(data)
        lines.append(
            f"| {name} | {data['current'][kept].mean() - data['current'][dropped].mean():+.3f} | "
            f"{data['anchor'][kept].mean() - data['anchor'][dropped].mean():+.3f} | "
            f"{data['anchor'][scored].mean():.3f} | {persistence['kept_again']:.3f} / "
            f"{persistence['dropped_then_kept']:.3f} | {persistence['count_std']:.2f} | {pairs:.0f} / {random_pairs:.0f} "
            f"| {np.nanmean(data['step_grad_norm']):.3f} | {result['top1']:.2f} / {result['knn_top1']:.2f} |"
        )
    return lines + [""]


def run_tables(name: str, data: dict) -> list[str]:
    lines = [
        f"### {name}",
        "",
        "| candidates | rows | kept share | current loss kept / dropped | anchor loss kept / dropped "
        "| score kept / dropped |",
        "|---|---|---|---|---|---|",
    ]
    score = data["current"] - data["anchor"]
    for label, rows in groups(data).items():
        if not rows.any():
            continue
        kept, dropped = rows & data["kept"], rows & ~data["kept"]

        def pair(values, kept=kept, dropped=dropped):
            return f"{values[kept].mean():.4f} / {values[dropped].mean():.4f}" if dropped.any() and kept.any() else "–"

        lines.append(
            f"| {label} | {rows.sum()} | {data['kept'][rows].mean():.3f} | {pair(data['current'])} | "
            f"{pair(data['anchor'])} | {pair(score)} |"
        )
    scored = ~np.isnan(data["current"])
    if scored.any():
        current_share, anchor_share, random_share = overlap_with_hardness(data)
        lines += [
            "",
            f"Of the kept candidates, {current_share:.3f} are among the top-k of the current loss and {anchor_share:.3f} "
            f"among the top-k of the anchor loss (a random choice: {random_share:.3f}). Spearman correlation of the "
            f"score with the current loss {spearman(score[scored], data['current'][scored]):+.3f}, with the anchor "
            f"loss {spearman(score[scored], data['anchor'][scored]):+.3f}.",
        ]
    steps = sorted(set(data["step_step"].astype(int)))
    grad = [np.nanmean(data["step_grad_norm"][data["step_step"] == s]) for s in steps]
    update = [np.nanmean(data["step_update_norm"][data["step_step"] == s]) for s in steps]
    lines += ["", "| local step | " + " | ".join(map(str, steps)) + " |", "|---|" + "---|" * len(steps)]
    lines += ["| gradient norm | " + " | ".join(f"{g:.3f}" for g in grad) + " |"]
    lines += ["| update norm | " + " | ".join(f"{u:.4f}" for u in update) + " |", ""]
    return lines


def accuracy_table(runs: list[Path]) -> list[str]:
    lines = [
        "### Accuracy of every run (linear probe on features, kNN; linear accuracy per task after the last task)",
        "",
    ]
    lines += ["| run | linear top-1 | kNN top-1 | per task (linear) | train s |", "|---|---|---|---|---|"]
    for run in runs:
        result = json.loads((run / "result.json").read_text())
        per_task = "–"
        if (run / "task_matrix.csv").exists():
            with (run / "task_matrix.csv").open() as f:
                rows = [r for r in csv.DictReader(f) if r["probe"] == "linear"]
            last = max(int(r["after_task"]) for r in rows)
            per_task = ", ".join(r["accuracy"] for r in rows if int(r["after_task"]) == last)
        lines.append(
            f"| {run.name} | {result['top1']:.2f} | {result['knn_top1']:.2f} | {per_task} | {result['train_seconds']:.0f} |"
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--tag", default="mechanism")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    runs = sorted(p.parent for p in args.runs_dir.glob(f"*_seed*_{args.tag}/result.json"))
    lines = [f"## Candidate logs ({args.runs_dir.name}, tag {args.tag})", ""]
    logged = [
        (run.name, load(run), json.loads((run / "result.json").read_text())) for run in runs if candidate_log(run)
    ]
    if logged:
        lines += comparison_table(logged) + trajectory_table(logged)
    for name, data, _ in logged:
        lines += run_tables(name, data)
    lines += accuracy_table(runs)
    text = "\n".join(lines)
    if args.write:
        args.write.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
