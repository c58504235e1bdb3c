"""Table 1 of the paper, reproduced: Offline, CaSSLe, Ours without RALS and Ours at several "steps", from one shared
task-1 checkpoint (or one per seed, ``--task1 per_seed``), once per seed, each followed by a linear probe, weighted kNN and, for the strategies that see
tasks one after another, the per-task accuracy matrix with average accuracy, forgetting and forward transfer.

python -m solo_ossl.compare --dataset cifar100 --method barlow --steps 10 20 50 [--seeds 0 1 2] [--scale cpu]
    [--strategies ...] [--probe features|augmented] [--task1 shared|per_seed] [++key=value ...]

"Steps" are epochs per task for CaSSLe, epochs over all data for Offline, and optimizer steps per stream batch
for Ours. Every row also records wall-clock time and image-views forwarded / back-propagated, so compute is
compared honestly (Ours sees an extra memory batch per step). Beside the paper's rows, ``offline_cm`` and
``cassle_cm`` back-propagate as many image-views as Ours without RALS at the same N (``compute_matched_epochs``),
and ``ours_random`` is Ours with RALS's choice replaced by a uniformly random one (``online.selection=random``).
Finished runs (a result.json in their folder) are never trained again: runs accumulate across invocations.
Each run records the fingerprint of the task-1 weights it started from and the machine it ran on. A task-1
checkpoint retrained elsewhere (another CPU's kernels give other weights) does not silently continue a seed whose
finished runs started from other weights: the runner stops with an error instead.
"""

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from solo_ossl.args import load_config, load_linear_config
from solo_ossl.continual import CassleRegime, run_continual
from solo_ossl.data import class_order, split_tasks
from solo_ossl.eval import continual_metrics, per_task_accuracy
from solo_ossl.linear import evaluate
from solo_ossl.pretrain import run_pretrain
from solo_ossl.utils.checkpoint import weights_fingerprint
from solo_ossl.utils.device import machine_name
from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error

PAPER_STRATEGIES = ("offline", "cassle", "ours_no_rals", "ours")
STRATEGIES = (*PAPER_STRATEGIES, "offline_cm", "cassle_cm", "ours_random")
LABELS = {
    "offline": "Offline",
    "cassle": "CaSSLe",
    "ours_no_rals": "Ours without RALS",
    "ours": "Ours",
    "offline_cm": "Offline, compute-matched",
    "cassle_cm": "CaSSLe, compute-matched",
    "ours_random": "Ours, random selection",
}
ONLINE = {"ours_no_rals": "", "ours": "_rals", "ours_random": "_rals"}
PAIRS = (("ours", "cassle"), ("ours", "ours_no_rals"), ("ours_no_rals", "cassle"), ("ours", "ours_random"))
METHOD_FILES = {"barlow": "barlow", "barlow_twins": "barlow", "simclr": "simclr"}
METRICS = ("average", "forgetting", "forward_transfer")

PRESETS = Path(__file__).resolve().parent / "presets"


def scale_preset(scale: str) -> tuple[list[str], int | None]:
    """The config overrides and task-1 epochs of ``--scale`` (``presets/compare_<scale>.yaml``; none for paper)."""
    if scale == "paper":
        return [], None
    preset = OmegaConf.load(PRESETS / f"compare_{scale}.yaml")
    return [f"++{key}={value}" for key, value in preset.overrides.items()], preset.get("task1_epochs")


def compute_matched_epochs(strategy: str, steps: int) -> int:
    """Epochs at which CaSSLe / Offline back-propagate the image-views of Ours without RALS at N = ``steps``.

    Ours without RALS trains S/128 stream batches x N steps x 256 samples x 2 views = 4 N S views over the S
    stream samples of tasks 2-5. CaSSLe's E epochs over each of those tasks are 2 E S, so E = 2N; Offline's E
    epochs over all five tasks (5/4 S) are 2.5 E S, so E = 1.6 N.
    """
    return {"cassle_cm": 2 * steps, "offline_cm": round(1.6 * steps)}[strategy]


class ImageCounter(Callback):
    """Image-views through the model in offline/CaSSLe training (CaSSLe adds a no-grad frozen forward)."""

    def __init__(self) -> None:
        self.forward = self.backward = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        views = sum(v.size(0) for v in batch[1])
        self.backward += views
        self.forward += views * (2 if isinstance(pl_module.regime, CassleRegime) else 1)


def _train(config_name: str, overrides: list[str]) -> tuple[Path, int, int]:
    counter = ImageCounter()
    final = run_pretrain(load_config(["--config-name", config_name, *overrides]), [counter])
    online = torch.load(final, map_location="cpu", weights_only=False).get("online")
    if online is not None:
        return final, online["images_forward"], online["images_backward"]
    return final, counter.forward, counter.backward


class Prober:
    """Linear probe and kNN of checkpoints on the full training and test sets, with per-task accuracies."""

    def __init__(self, args, overrides: list[str], task_classes: list[list[int]]) -> None:
        data = [o for o in overrides if o.lstrip("+").startswith(("data.", "precision", "backbone."))]
        self.data = [o for o in data if "train_per_class" not in o and "tasks" not in o]
        self.dataset, self.task_classes = args.dataset, task_classes

    def __call__(self, checkpoint: Path | None, seed: int, mode: str = "features") -> dict:
        source = [f"++pretrained_ckpt={checkpoint}"] if checkpoint else ["++random_init=true"]
        cfg = load_linear_config(
            [
                "--config-name",
                f"linear/{self.dataset}",
                *source,
                f"++mode={mode}",
                f"++seed={seed}",
                "++progress_bar=false",
                *self.data,
            ]
        )
        ev = evaluate(cfg, knn=True)
        targets = ev.test_targets
        return {
            **{k: ev.results.get(k) for k in ("top1", "top5", "knn_top1", "knn_top5")},
            "linear_tasks": per_task_accuracy(ev.linear_logits.argmax(1), targets, self.task_classes),
            "knn_tasks": per_task_accuracy(ev.knn_ranked[:, 0], targets, self.task_classes),
        }

    def cached(self, checkpoint: Path | None, seed: int, path: Path, fingerprint: str | None = None) -> dict:
        """The probe of ``checkpoint`` stored at ``path``, computed once; ``fingerprint`` (of the checkpoint's weights)
        is stored with it."""
        if path.is_file():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        result = self(checkpoint, seed)
        if fingerprint is not None:
            result["task1_fingerprint"] = fingerprint
        path.write_text(json.dumps(result, indent=2))
        return result


def check_same_start(what: Path, recorded: str | None, current: str | None) -> None:
    """A finished result counts for this seed only if it started from the task-1 weights the seed has now."""
    if recorded is not None and current is not None and recorded != current:
        raise SoloOsslError(
            f"{what} started from task-1 weights {recorded}, but this seed's task-1 checkpoint is now {current} "
            "(retrained on another machine or code?): restore that checkpoint, or move the seed's finished runs "
            "away to train the seed again from the new one"
        )


def task_checkpoints(strategy: str, out: Path, num_tasks: int) -> list[Path]:
    """The checkpoints at the end of tasks 2..T of a run that trains task by task (online or CaSSLe)."""
    if strategy in ONLINE:
        return [out / "online" / "checkpoints" / f"task{t}.ckpt" for t in range(2, num_tasks + 1)]
    return [out / f"task{t}" / "final.ckpt" for t in range(2, num_tasks + 1)]


def write_task_matrix(out: Path, matrices: dict[str, list[list[float]]], metrics: dict[str, dict]) -> None:
    """``task_matrix.csv`` (probe, after_task, task, accuracy), ``continual.json`` and ``task_matrix.png``."""
    with (out / "task_matrix.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["probe", "after_task", "task", "accuracy"])
        for probe, matrix in matrices.items():
            writer.writerows(
                [probe, t + 1, i + 1, f"{a:.2f}"] for t, row in enumerate(matrix) for i, a in enumerate(row)
            )
    (out / "continual.json").write_text(json.dumps(metrics, indent=2))
    plot_matrices(matrices, out / "task_matrix.png", out.name)


def plot_matrices(matrices: dict[str, list[list[float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.6), squeeze=False)
    for ax, (probe, matrix) in zip(axes[0], matrices.items(), strict=True):
        image = ax.imshow(matrix, cmap="viridis")
        n = len(matrix)
        for t in range(n):
            for i in range(n):
                ax.text(i, t, f"{matrix[t][i]:.1f}", ha="center", va="center", color="w", fontsize=8)
        ticks = list(range(n))
        ax.set_xticks(ticks, [str(i + 1) for i in ticks])
        ax.set_yticks(ticks, [str(t + 1) for t in ticks])
        ax.set(xlabel="accuracy on task i", ylabel="after training task t", title=f"{title}: {probe} (%)")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_strategy(strategy: str, steps: int, seed: int, args, ctx: dict) -> dict:
    out = Path(args.output_dir) / f"{strategy}_{steps}_seed{seed}"
    result_file = out / "result.json"
    prober: Prober = ctx["prober"]
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        if result.get("probe", "features") == args.probe:
            print(f"[compare] {strategy} steps={steps} seed={seed}: done before, skipped")
            return result
        # Trained before and probed another way: probe the same checkpoint again, without training.
        probed = prober(Path(result["checkpoint"]), seed, args.probe)
        result.update(top1=probed["top1"], top5=probed["top5"], probe=args.probe)
        result_file.write_text(json.dumps(result, indent=2))
        print(f"[compare] {strategy} steps={steps} seed={seed}: re-probed ({args.probe}), top-1 {result['top1']:.2f}%")
        return result
    task1, fingerprint = ctx["start"](seed)
    out.mkdir(parents=True, exist_ok=True)
    method = METHOD_FILES[args.method]
    seeded = [*ctx["common"], f"++seed={seed}", f"++online.memory.seed={seed}", f"++output_dir={out}"]
    pretrain_config = f"pretrain/{args.dataset}/{method}"
    epochs = compute_matched_epochs(strategy, steps) if strategy.endswith("_cm") else steps
    start = time.perf_counter()
    if strategy in ("offline", "offline_cm"):
        final, fwd, bwd = _train(
            pretrain_config,
            [*seeded, f"++pretrained_ckpt={task1}", "++data.tasks=null", f"++max_epochs={epochs}", "++name=offline"],
        )
    elif strategy in ("cassle", "cassle_cm"):
        counter = ImageCounter()
        overrides = [o for o in seeded if not o.startswith("++output_dir=")]
        overrides += [f"++pretrained_ckpt={task1}", f"++max_epochs={epochs}"]
        overrides += [f"++output_dir={out.parent}", f"++name={out.name}"]  # tasks in out/task<t>
        final = run_continual(load_config(["--config-name", pretrain_config, *overrides]), [counter])[-1]
        fwd, bwd = counter.forward, counter.backward
    else:
        selection = ["++online.selection=random"] if strategy == "ours_random" else []
        final, fwd, bwd = _train(
            f"online/{args.dataset}/{method}{ONLINE[strategy]}",
            [
                *seeded,
                f"++pretrained_ckpt={task1}",
                f"++online.steps_per_batch={steps}",
                *selection,
                "++name=online",
            ],
        )
    seconds = time.perf_counter() - start
    result = {
        "strategy": strategy,
        "steps": steps,
        "seed": seed,
        "epochs": epochs if strategy not in ONLINE else None,
        "probe": args.probe,
        "train_seconds": round(seconds, 1),
        "images_forward": int(fwd),
        "images_backward": int(bwd),
        "checkpoint": str(final),
        "task1_fingerprint": fingerprint,
        "machine": machine_name(),
        "torch": torch.__version__,
    }
    task1_eval, random_eval = ctx["task1_eval"](seed), ctx["random_eval"](seed)
    if strategy in ("offline", "offline_cm"):
        last = prober(final, seed)
    else:
        rows = [task1_eval] + [prober(c, seed) for c in task_checkpoints(strategy, out, ctx["num_tasks"])]
        last = rows[-1]
        matrices = {p: [r[f"{p}_tasks"] for r in rows] for p in ("linear", "knn")}
        metrics = {p: continual_metrics(matrices[p], random_eval[f"{p}_tasks"]) for p in matrices}
        write_task_matrix(out, matrices, metrics)
        result.update({f"{m}": metrics["linear"][m] for m in METRICS})
        result.update({f"knn_{m}": metrics["knn"][m] for m in METRICS})
    probed = last if args.probe == "features" else prober(final, seed, args.probe)
    result.update(top1=probed["top1"], top5=probed["top5"], knn_top1=last["knn_top1"], knn_top5=last["knn_top5"])
    result_file.write_text(json.dumps(result, indent=2))
    print(f"[compare] {strategy} steps={steps} seed={seed}: top-1 {result['top1']:.2f}% in {seconds:.0f} s")
    return result


# ---- reports ----------------------------------------------------------------------------------------------------
FIELDS = [
    "strategy",
    "steps",
    "seed",
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
    "checkpoint",
    "task1_fingerprint",
    "machine",
]


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


def _count(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 100_000 else f"{n / 1e3:.1f} k"


def write_reports(results: list[dict], output_dir: Path, title: str, baselines: dict) -> None:
    results = sorted(results, key=lambda r: (r["steps"], STRATEGIES.index(r["strategy"]), r["seed"]))
    with (output_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    steps = sorted({r["steps"] for r in results})
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in results)]
    cell: dict[tuple[str, int], list[dict]] = {}
    for r in results:
        cell.setdefault((r["strategy"], r["steps"]), []).append(r)

    def values(strategy, n, key):
        return [r[key] for r in cell.get((strategy, n), []) if r.get(key) is not None]

    def accuracy_table(heading: str, key: str) -> list[str]:
        header = ["", heading, "", "| strategy | " + " | ".join(f"{s} steps" for s in steps) + " |"]
        rows = [
            f"| {LABELS[st]} | " + " | ".join(mean_std(values(st, n, key)) for n in steps) + " |" for st in strategies
        ]
        return [*header, "|---|" + "---|" * len(steps), *rows]

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
    for n in steps:
        for strategy in strategies:
            if not values(strategy, n, "average"):
                continue
            cells = [mean_std(values(strategy, n, m)) for m in (*METRICS, *(f"knn_{m}" for m in METRICS))]
            lines.append(f"| {LABELS[strategy]} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired differences of linear top-1 (per seed; mean and 95% t-interval)", ""]
    lines += ["| steps | pair | per-seed differences | mean | 95% interval |", "|---|---|---|---|---|"]
    for n in steps:
        for a, b in PAIRS:
            diff = paired_difference(
                {r["seed"]: r["top1"] for r in cell.get((a, n), [])},
                {r["seed"]: r["top1"] for r in cell.get((b, n), [])},
            )
            if diff is None:
                continue
            per_seed = ", ".join(f"{d:+.2f}" for d in diff["diffs"])
            interval = "–" if math.isnan(diff["low"]) else f"[{diff['low']:+.2f}, {diff['high']:+.2f}]"
            lines.append(f"| {n} | {LABELS[a]} − {LABELS[b]} | {per_seed} | {diff['mean']:+.2f} | {interval} |")
    lines += [
        "",
        "## Compute per run (mean over seeds)",
        "",
        "| strategy | steps | epochs | train s | image-views forwarded | back-propagated |",
        "|---|---|---|---|---|---|",
    ]
    for n in steps:
        for strategy in strategies:
            rows = cell.get((strategy, n), [])
            if rows:
                epochs = rows[0].get("epochs")
                mean = {
                    k: statistics.mean(r[k] for r in rows)
                    for k in ("train_seconds", "images_forward", "images_backward")
                }
                lines.append(
                    f"| {LABELS[strategy]} | {n} | {epochs if epochs is not None else '–'} | "
                    f"{mean['train_seconds']:.0f} | {_count(mean['images_forward'])} | {_count(mean['images_backward'])} |"
                )
    (output_dir / "results.md").write_text("\n".join(lines) + "\n")
    plot_results(results, strategies, steps, output_dir / "results.png", title)


def plot_results(results: list[dict], strategies: list[str], steps: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 4.0))
    for strategy in strategies:
        points = []
        for n in steps:
            vals = [r["top1"] for r in results if r["strategy"] == strategy and r["steps"] == n]
            if vals:
                points.append((n, statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0))
        if points:
            x, y, err = zip(*points, strict=True)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=LABELS[strategy])
    ax.set(xlabel="steps (epochs per task / optimizer steps per stream batch)", ylabel="linear top-1 (%)", title=title)
    ax.set_xticks(steps)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m solo_ossl.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar100", help="config family: cifar100, imagenet100, embedded")
    parser.add_argument("--method", default="barlow", choices=sorted(METHOD_FILES))
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="+", default=list(PAPER_STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--scale", choices=["paper", "cpu"], default="paper")
    parser.add_argument("--task1-epochs", type=int, default=None, help="default: the config's (cpu scale: 50)")
    parser.add_argument(
        "--probe",
        choices=["features", "augmented"],
        default="features",
        help="linear probe: features (fast approximation, default) or augmented (CaSSLe's protocol)",
    )
    parser.add_argument(
        "--task1",
        choices=["shared", "per_seed"],
        default="shared",
        help="shared: one task-1 checkpoint (the config's seed) starts every seed; per_seed: each seed trains its own "
        "with ++seed=<seed>, so that the seeds' spread includes task-1 training",
    )
    parser.add_argument("--output-dir", default=None)
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise SoloOsslError(f"cannot parse {bad}: extra arguments must be ++key=value config overrides")
    args.output_dir = Path(args.output_dir or f"trained_models/compare-{args.dataset}-{args.method}-{args.scale}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    # Strategies are judged by the probes afterwards; validating inside offline runs would only bill them.
    preset, preset_task1_epochs = scale_preset(args.scale)
    common = [*preset, "++progress_bar=false", "++val_every_n_epochs=0", *overrides]
    pretrain_config = f"pretrain/{args.dataset}/{METHOD_FILES[args.method]}"
    base_cfg = load_config(["--config-name", pretrain_config, *common])
    task1_epochs = args.task1_epochs or preset_task1_epochs
    task1_dir = args.output_dir / "task1"

    def task1_checkpoint(seed: int) -> Path:
        """The task-1 checkpoint that starts ``seed``'s runs, trained here when it is missing."""
        run_dir = task1_dir if args.task1 == "shared" else task1_dir / f"seed{seed}"
        final = run_dir / "task1" / "final.ckpt"
        if final.is_file():
            print(f"[compare] task-1 checkpoint {final}: done before, skipped")
            return final
        extra = [f"++max_epochs={task1_epochs}"] if task1_epochs else []
        extra += [f"++seed={seed}"] if args.task1 == "per_seed" else []
        print(f"[compare] training the task-1 checkpoint {final}")
        run_pretrain(
            load_config(
                [
                    "--config-name",
                    pretrain_config,
                    *common,
                    f"++output_dir={run_dir}",
                    "++name=task1",
                    "++data.tasks=[1]",
                    *extra,
                ]
            )
        )
        return final

    starts: dict[int, tuple[Path, str]] = {}

    def start(seed: int) -> tuple[Path, str]:
        """``seed``'s task-1 checkpoint and its weights' fingerprint, checked against every finished result of the
        seed: a new run joins them only if it starts from the same weights."""
        if seed not in starts:
            task1 = task1_checkpoint(seed)
            starts[seed] = task1, weights_fingerprint(task1)
            runs = f"seed{seed}" if args.task1 == "per_seed" else "seed*"  # the runs that start from this checkpoint
            finished = [*args.output_dir.glob(f"*_{runs}/result.json"), *task1_dir.glob(f"probe_{runs}.json")]
            for path in finished:
                check_same_start(path, json.loads(path.read_text()).get("task1_fingerprint"), starts[seed][1])
        return starts[seed]

    def task1_eval(seed: int) -> dict:
        """The task-1 start's probe for ``seed``: stored once per seed, so a report needs no checkpoint."""
        stored = task1_dir / f"probe_seed{seed}.json"
        if stored.is_file():
            return json.loads(stored.read_text())
        task1, fingerprint = start(seed)
        return prober.cached(task1, seed, stored, fingerprint)

    data = base_cfg.data
    num_classes = len(data.class_order) if data.class_order else None
    if num_classes is None:
        # The split needs the number of classes; every task-1 run records it.
        recorded = next(task1_dir.glob("**/task1/class_order.json"), None)
        recorded = recorded or task1_checkpoint(args.seeds[0]).parent / "class_order.json"
        num_classes = len(json.loads(recorded.read_text())["class_order"])
    task_classes = split_tasks(class_order(num_classes, data.class_order_seed, data.class_order), data.num_tasks)
    prober = Prober(args, common, task_classes)
    ctx = {
        "start": start,
        "common": common,
        "num_tasks": data.num_tasks,
        "prober": prober,
        "task1_eval": task1_eval,
        "random_eval": lambda seed: prober.cached(
            None, seed, args.output_dir / "random_init" / f"probe_seed{seed}.json"
        ),
    }
    results = [run_strategy(s, n, seed, args, ctx) for seed in args.seeds for n in args.steps for s in args.strategies]
    # Reports cover every finished run in the folder, from this invocation and earlier ones.
    results = [json.loads(p.read_text()) for p in sorted(args.output_dir.glob("*_seed*/result.json"))]
    seeds = sorted({r["seed"] for r in results})
    baselines = {
        "random": _collect([ctx["random_eval"](s) for s in seeds]),
        "task1": _collect([ctx["task1_eval"](s) for s in seeds]),
    }
    title = f"{args.method} on {args.dataset} ({args.scale} scale)"
    write_reports(results, args.output_dir, title, baselines)
    print((args.output_dir / "results.md").read_text())
    return results


def _collect(evals: list[dict]) -> dict[str, list[float]]:
    return {k: [e[k] for e in evals] for k in ("top1", "knn_top1")}


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[dict]:
    import sys

    return compare(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
