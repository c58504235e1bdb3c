"""Table 1 of the paper, reproduced: Offline, CaSSLe, Ours without RALS and Ours at several "steps", each
followed by a linear probe, from one shared task-1 checkpoint.

python -m solo_ossl.compare --dataset cifar100 --method barlow --steps 10 20 50 [--scale cpu] [++key=value ...]

"Steps" are epochs per task for CaSSLe, epochs over all data for Offline, and optimizer steps per stream batch
for Ours. Every row also records wall-clock time and image-views forwarded / back-propagated, so compute is
compared honestly (Ours sees an extra memory batch per step). Finished runs (a result.json in their folder) are
skipped when the command is run again.
"""

import argparse
import csv
import json
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.args import load_config, load_linear_config
from solo_ossl.linear import run_linear
from solo_ossl.pretrain import run_pretrain
from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error

STRATEGIES = ("offline", "cassle", "ours_no_rals", "ours")
LABELS = {"offline": "Offline", "cassle": "CaSSLe", "ours_no_rals": "Ours without RALS", "ours": "Ours"}
METHOD_FILES = {"barlow": "barlow", "barlow_twins": "barlow", "simclr": "simclr"}

# CPU-scale preset: width-0.25 ResNet18, smaller projector, 50 training images per class, memory scaled to match.
CPU_SCALE = [
    "++backbone.width=0.25",
    "++method.proj_hidden_dim=512",
    "++method.proj_output_dim=512",
    "++cassle.proj_hidden_dim=512",
    "++data.train_per_class=50",
    "++online.memory.capacity=1000",
    "++precision=auto",
]
CPU_TASK1_EPOCHS = 30


class ImageCounter(Callback):
    """Image-views through the model in offline/CaSSLe training (CaSSLe adds a no-grad frozen forward)."""

    def __init__(self) -> None:
        self.forward = self.backward = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        views = sum(v.size(0) for v in batch[1])
        self.backward += views
        self.forward += views * (2 if pl_module.distiller is not None else 1)


def _train(config_name: str, overrides: list[str]) -> tuple[Path, int, int]:
    counter = ImageCounter()
    final = run_pretrain(load_config(["--config-name", config_name, *overrides]), [counter])
    online = torch.load(final, map_location="cpu", weights_only=False).get("online")
    if online is not None:
        return final, online["images_forward"], online["images_backward"]
    return final, counter.forward, counter.backward


def _linear(ckpt: Path, dataset: str, out_dir: Path, overrides: list[str], probe: str) -> dict:
    data_overrides = [o for o in overrides if o.lstrip("+").startswith(("data.", "precision"))]
    data_overrides = [o for o in data_overrides if "train_per_class" not in o and "tasks" not in o]
    cfg = load_linear_config(
        [
            "--config-name",
            f"linear/{dataset}",
            f"++pretrained_ckpt={ckpt}",
            f"++mode={probe}",
            f"++output_json={out_dir / 'linear.json'}",
            "++progress_bar=false",
            *data_overrides,
        ]
    )
    return run_linear(cfg)


def run_strategy(strategy: str, steps: int, args, task1: Path, common: list[str]) -> dict:
    out = Path(args.output_dir) / f"{strategy}_{steps}"
    result_file = out / "result.json"
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        if result.get("probe", "features") == args.probe:
            print(f"[compare] {strategy} steps={steps}: done before, skipped")
            return result
        # Trained before and probed another way: probe the same checkpoint again, without training.
        linear = _linear(Path(result["checkpoint"]), args.dataset, out, common, args.probe)
        result.update(top1=linear["top1"], top5=linear.get("top5"), probe=args.probe)
        result_file.write_text(json.dumps(result, indent=2))
        print(f"[compare] {strategy} steps={steps}: re-probed ({args.probe}), top-1 {result['top1']:.2f}%")
        return result
    out.mkdir(parents=True, exist_ok=True)
    method = METHOD_FILES[args.method]
    base = [*common, f"++output_dir={out}", f"++pretrained_ckpt={task1}"]
    start = time.perf_counter()
    if strategy == "offline":
        final, fwd, bwd = _train(
            f"pretrain/{args.dataset}/{method}", [*base, "++data.tasks=null", f"++max_epochs={steps}", "++name=offline"]
        )
    elif strategy == "cassle":
        fwd = bwd = 0
        final = task1
        num_tasks = load_config(["--config-name", f"pretrain/{args.dataset}/{method}", *common]).data.num_tasks
        for task in range(2, num_tasks + 1):
            final, f, b = _train(
                f"pretrain/{args.dataset}/{method}",
                [
                    *common,
                    f"++output_dir={out}",
                    f"++pretrained_ckpt={final}",
                    f"++data.tasks=[{task}]",
                    f"++max_epochs={steps}",
                    "++cassle.enabled=true",
                    f"++name=task{task}",
                ],
            )
            fwd, bwd = fwd + f, bwd + b
    else:
        config = f"online/{args.dataset}/{method}" + ("_rals" if strategy == "ours" else "")
        pct = "0.25" if steps == 50 else "0.5"
        final, fwd, bwd = _train(
            config, [*base, f"++online.steps_per_batch={steps}", f"++online.pct_start={pct}", "++name=online"]
        )
    seconds = time.perf_counter() - start
    linear = _linear(final, args.dataset, out, common, args.probe)
    result = {
        "strategy": strategy,
        "steps": steps,
        "top1": linear["top1"],
        "top5": linear.get("top5"),
        "probe": args.probe,
        "train_seconds": round(seconds, 1),
        "images_forward": int(fwd),
        "images_backward": int(bwd),
        "checkpoint": str(final),
    }
    result_file.write_text(json.dumps(result, indent=2))
    print(f"[compare] {strategy} steps={steps}: top-1 {result['top1']:.2f}% in {seconds:.0f} s")
    return result


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 100_000 else f"{n / 1e3:.1f} k"


def write_reports(results: list[dict], output_dir: Path, title: str) -> None:
    fields = [
        "strategy",
        "steps",
        "top1",
        "top5",
        "probe",
        "train_seconds",
        "images_forward",
        "images_backward",
        "checkpoint",
    ]
    with (output_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(sorted(results, key=lambda r: (r["steps"], STRATEGIES.index(r["strategy"]))))
    steps = sorted({r["steps"] for r in results})
    cell = {(r["strategy"], r["steps"]): r for r in results}
    lines = [
        f"# {title}",
        "",
        "Linear top-1 (%) by strategy and steps; under it, training time (s) and image-views "
        "forwarded / back-propagated.",
        "",
        "| strategy | " + " | ".join(f"{s} steps" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for strategy in STRATEGIES:
        row = [cell.get((strategy, s)) for s in steps]
        lines.append(f"| {LABELS[strategy]} | " + " | ".join(f"{r['top1']:.2f}" if r else "–" for r in row) + " |")
        lines.append(
            "|  | "
            + " | ".join(
                f"{r['train_seconds']:.0f} s, {_count(r['images_forward'])} / {_count(r['images_backward'])}"
                if r
                else ""
                for r in row
            )
            + " |"
        )
    (output_dir / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for strategy in STRATEGIES:
        pts = sorted((r["steps"], r["top1"]) for r in results if r["strategy"] == strategy)
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=LABELS[strategy])
    ax.set(xlabel="steps (epochs per task / optimizer steps per stream batch)", ylabel="linear top-1 (%)", title=title)
    ax.set_xticks(steps)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output_dir / "results.png", dpi=110)


def compare(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m solo_ossl.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar100", help="config family: cifar100, imagenet100, embedded")
    parser.add_argument("--method", default="barlow", choices=sorted(METHOD_FILES))
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--scale", choices=["paper", "cpu"], default="paper")
    parser.add_argument("--task1-epochs", type=int, default=None, help="default: the config's (cpu scale: 30)")
    parser.add_argument(
        "--probe",
        choices=["features", "augmented"],
        default="features",
        help="linear probe: features (fast approximation, default) or augmented (CaSSLe's protocol)",
    )
    parser.add_argument("--output-dir", default=None)
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise SoloOsslError(f"cannot parse {bad}: extra arguments must be ++key=value config overrides")
    args.output_dir = Path(args.output_dir or f"trained_models/compare-{args.dataset}-{args.method}-{args.scale}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    # Strategies are judged by the linear probe afterwards; validating inside offline runs would only bill them.
    common = [*(CPU_SCALE if args.scale == "cpu" else []), "++progress_bar=false", "++val_every_n_epochs=0", *overrides]
    task1_epochs = args.task1_epochs or (CPU_TASK1_EPOCHS if args.scale == "cpu" else None)
    task1 = args.output_dir / "task1" / "task1" / "final.ckpt"
    if task1.is_file():
        print(f"[compare] task-1 checkpoint {task1}: done before, skipped")
    else:
        extra = [f"++max_epochs={task1_epochs}"] if task1_epochs else []
        run_pretrain(
            load_config(
                [
                    "--config-name",
                    f"pretrain/{args.dataset}/{METHOD_FILES[args.method]}",
                    *common,
                    f"++output_dir={task1.parent.parent}",
                    "++name=task1",
                    "++data.tasks=[1]",
                    *extra,
                ]
            )
        )
    results = [run_strategy(s, n, args, task1, common) for n in args.steps for s in args.strategies]
    title = f"{args.method} on {args.dataset} ({args.scale} scale)"
    write_reports(results, args.output_dir, title)
    print((args.output_dir / "results.md").read_text())
    return results


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[dict]:
    import sys

    return compare(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
