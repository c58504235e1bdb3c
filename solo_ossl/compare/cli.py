"""Table 1 of the paper, reproduced: the strategies of ``solo_ossl.compare.strategies`` at several "steps", from one
shared task-1 checkpoint (or one per seed, ``--task1 per_seed``), once per seed, each followed by a linear probe,
weighted kNN and, for the strategies that see tasks one after another, the per-task accuracy matrix with average
accuracy, forgetting and forward transfer.

python -m solo_ossl.compare --dataset cifar100 --method barlow --steps 10 20 50 [--seeds 0 1 2] [--scale cpu]
    [--strategies ...] [--probe features|augmented] [--task1 shared|per_seed] [--tag NAME]
    [--launcher inline|local|slurm [--launcher-param KEY=VALUE ...]] [++key=value ...]

Every row records wall-clock time and image-views forwarded / back-propagated, so compute is compared honestly
(Ours sees an extra memory batch per step). Finished runs (a result.json in their folder) are never trained again:
runs accumulate across invocations. A run is keyed by strategy, N, seed and ``--tag``; the command's ``++key=value``
settings are recorded with it, and a finished run of other settings under the same key stops the command (pass a
``--tag`` to keep both). Each run records the fingerprint of the task-1 weights it started from and the machine it
ran on; a task-1 checkpoint retrained elsewhere (another CPU's kernels give other weights) does not silently continue
a seed whose finished runs started from other weights. ``++data.last_task=T`` truncates every strategy to tasks
1..T (probed as a T x T matrix).
"""

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from solo_ossl.args import load_config
from solo_ossl.compare.launch import LAUNCHERS, run_all
from solo_ossl.compare.probe import Prober
from solo_ossl.compare.reports import load_results, write_reports
from solo_ossl.compare.runner import Comparison
from solo_ossl.compare.strategies import PAPER_STRATEGIES, STRATEGIES
from solo_ossl.compare.task1 import Task1
from solo_ossl.data import class_order, split_tasks
from solo_ossl.methods import ALIASES, METHODS, config_stem
from solo_ossl.run.common import last_task
from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error

PRESETS = Path(__file__).resolve().parent.parent / "presets"
# Overrides that say where and how a run computes, not what it trains: not part of a run's recorded setting.
PLACE_KEYS = ("data.data_dir", "data.download", "data.num_workers", "progress_bar", "accelerator", "devices")


def scale_preset(scale: str) -> tuple[list[str], int | None]:
    """The config overrides and task-1 epochs of ``--scale`` (``presets/compare_<scale>.yaml``; none for paper)."""
    if scale == "paper":
        return [], None
    preset = OmegaConf.load(PRESETS / f"compare_{scale}.yaml")
    return [f"++{key}={value}" for key, value in preset.overrides.items()], preset.get("task1_epochs")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m solo_ossl.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar100", help="config family: cifar100, imagenet100, embedded")
    parser.add_argument("--method", default="barlow", choices=sorted([*METHODS, *ALIASES]))
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="+", default=list(PAPER_STRATEGIES), choices=list(STRATEGIES))
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
    parser.add_argument("--tag", default="", help="a name for runs of another setting (++overrides) in one folder")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="inline",
        help="inline: here, one run after another; local or slurm: each (strategy, N, seed) run as a submitit job "
        "(slurm needs the cluster extra), resuming in its own folder",
    )
    parser.add_argument(
        "--launcher-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit parameter for every job, e.g. slurm_partition=gpu, timeout_min=600, gpus_per_node=1",
    )
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise SoloOsslError(f"cannot parse {bad}: extra arguments must be ++key=value config overrides")
    if args.tag and not args.tag.replace("-", "").replace(".", "").isalnum():
        raise SoloOsslError(f"--tag {args.tag!r}: use letters, digits, '.' and '-'")
    return args, overrides


def compare(argv: list[str]) -> list[dict]:
    args, overrides = parse(argv)
    output_dir = Path(args.output_dir or f"trained_models/compare-{args.dataset}-{args.method}-{args.scale}")
    output_dir.mkdir(parents=True, exist_ok=True)
    # Strategies are judged by the probes afterwards; validating inside offline runs would only bill them.
    preset, preset_task1_epochs = scale_preset(args.scale)
    common = [*preset, "++progress_bar=false", "++val_every_n_epochs=0", *overrides]
    setting = sorted(o.lstrip("+") for o in overrides if not o.lstrip("+").startswith(PLACE_KEYS))
    pretrain_config = f"pretrain/{args.dataset}/{config_stem(args.method)}"
    base_cfg = load_config(["--config-name", pretrain_config, *common])
    task1 = Task1(
        output_dir, pretrain_config, common, args.task1_epochs or preset_task1_epochs, args.task1 == "per_seed"
    )
    data = base_cfg.data
    num_classes = len(data.class_order) if data.class_order else task1.recorded_num_classes(args.seeds[0])
    task_classes = split_tasks(class_order(num_classes, data.class_order_seed, data.class_order), data.num_tasks)
    prober = Prober(args.dataset, common, task_classes)
    comparison = Comparison(
        args.dataset,
        config_stem(args.method),
        output_dir,
        common,
        setting,
        args.tag,
        args.probe,
        task1,
        prober,
        last_task(base_cfg),
    )
    runs = [(strategy, steps, seed) for seed in args.seeds for steps in args.steps for strategy in args.strategies]
    run_all(comparison, args.seeds, runs, args.launcher, args.launcher_param)
    # Reports cover every finished run in the folder, from this invocation and earlier ones.
    results = load_results(output_dir)
    seeds = sorted({r["seed"] for r in results})
    baselines = {
        "random": _collect([comparison.random_evaluation(s) for s in seeds]),
        "task1": _collect([task1.evaluation(s, prober) for s in seeds]),
    }
    write_reports(results, output_dir, f"{args.method} on {args.dataset} ({args.scale} scale)", baselines)
    print((output_dir / "results.md").read_text())
    return [{k: v for k, v in r.items() if k != "folder"} for r in results]


def _collect(evals: list[dict]) -> dict[str, list[float]]:
    return {k: [e[k] for e in evals] for k in ("top1", "knn_top1")}


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[dict]:
    import sys

    return compare(sys.argv[1:] if argv is None else argv)
