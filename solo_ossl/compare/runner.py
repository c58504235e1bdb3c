"""One comparison run: train a strategy at N for a seed from its task-1 checkpoint, probe it (and, for the strategies
that train task by task, every task's checkpoint: the accuracy matrix, average accuracy, forgetting and forward
transfer), and record it in ``result.json``. A finished run is never trained again."""

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.args import load_config
from solo_ossl.compare.probe import Prober
from solo_ossl.compare.strategies import STRATEGIES
from solo_ossl.compare.task1 import Task1
from solo_ossl.eval import continual_metrics
from solo_ossl.run.continual import run_continual
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.checkpoint import read_checkpoint
from solo_ossl.utils.device import machine_name
from solo_ossl.utils.errors import SoloOsslError

METRICS = ("average", "forgetting", "forward_transfer")


class ImageCounter(Callback):
    """Image-views through the model in offline/CaSSLe training (CaSSLe adds a no-grad frozen forward), and the
    distinct training images they came from."""

    def __init__(self) -> None:
        self.forward = self.backward = 0
        self.seen: set[int] = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.update(batch[0].tolist())
        views = sum(v.size(0) for v in batch[1])
        self.backward += views
        self.forward += views * pl_module.regime.forwards_per_trained_view


@dataclass
class Comparison:
    """What every run of one comparison shares: the config family, the common overrides (scale preset, the
    command's own), the setting they make (recorded with each result), the task-1 starts, the prober and the
    sequence's tasks."""

    dataset: str
    method: str
    output_dir: Path
    common: list[str]
    setting: list[str]
    tag: str
    probe: str
    task1: Task1
    prober: Prober
    last_task: int

    def random_evaluation(self, seed: int) -> dict:
        return self.prober.cached(None, seed, self.output_dir / "random_init" / f"probe_seed{seed}.json")

    def run_dir(self, strategy: str, steps: int, seed: int) -> Path:
        return self.output_dir / (f"{strategy}_{steps}_seed{seed}" + (f"_{self.tag}" if self.tag else ""))


def task_checkpoints(strategy: str, out: Path, first: int, last: int) -> list[Path]:
    """The checkpoints at the end of tasks ``first``..``last`` of a run that trains task by task."""
    if STRATEGIES[strategy].kind == "online":
        return [out / "online" / "checkpoints" / f"task{t}.ckpt" for t in range(first, last + 1)]
    return [out / f"task{t}" / "final.ckpt" for t in range(first, last + 1)]


def task_matrices(probes: list[dict], last_task: int) -> dict[str, list[list[float]]]:
    """``a[t][i]``, per probe (linear, kNN): row t from the checkpoint after task t + 1 (``probes[t]``), column i its
    accuracy on task i + 1's classes."""
    return {p: [probe[f"{p}_tasks"][:last_task] for probe in probes] for p in ("linear", "knn")}


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


def train(strategy: str, steps: int, seed: int, comparison: Comparison, out: Path, task1: Path) -> tuple:
    """Train ``strategy`` at N = ``steps``; its final checkpoint, epochs, image-views forwarded / back-propagated, and
    the distinct training images (an online run's streamed samples)."""
    row = STRATEGIES[strategy]
    config = row.config_name(comparison.dataset, comparison.method)
    seeded = [*comparison.common, *row.overrides, f"++seed={seed}", f"++online.memory.seed={seed}"]
    seeded.append(f"++pretrained_ckpt={task1}")
    epochs = row.epochs(steps, comparison.last_task) if row.kind != "online" else None
    counter = ImageCounter()
    if row.kind == "offline":
        cfg = load_config(["--config-name", config, *seeded, f"++output_dir={out}", "++data.tasks=null"])
        cfg.max_epochs, cfg.name = epochs, "offline"
        final = run_pretrain(cfg, [counter])
    elif row.kind == "continual":  # tasks in out/task<t>
        cfg = load_config(["--config-name", config, *seeded, f"++output_dir={out.parent}", f"++name={out.name}"])
        cfg.max_epochs = epochs
        final = run_continual(cfg, [counter])[-1]
    else:
        cfg = load_config(["--config-name", config, *seeded, f"++output_dir={out}", "++name=online"])
        cfg.online.steps_per_batch = steps
        final = run_pretrain(cfg)
        online = read_checkpoint(final)["online"]
        streamed = json.loads((final.parent / "stream.json").read_text())["num_samples"]
        return final, epochs, online["images_forward"], online["images_backward"], streamed
    return final, epochs, counter.forward, counter.backward, len(counter.seen)


def run_strategy(strategy: str, steps: int, seed: int, comparison: Comparison) -> dict:
    out = comparison.run_dir(strategy, steps, seed)
    result_file = out / "result.json"
    prober = comparison.prober
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        recorded = result.get("setting", comparison.setting)
        if recorded != comparison.setting:
            raise SoloOsslError(
                f"{result_file} was trained with the setting {recorded}, and this command asks for "
                f"{comparison.setting}: pass --tag NAME to keep runs of another setting beside it"
            )
        if result.get("probe", "features") == comparison.probe:
            print(f"[compare] {out.name}: done before, skipped")
            return result
        # Trained before and probed another way: probe the same checkpoint again, without training.
        probed = prober(Path(result["checkpoint"]), seed, comparison.probe)
        result.update(top1=probed["top1"], top5=probed["top5"], probe=comparison.probe)
        result_file.write_text(json.dumps(result, indent=2))
        print(f"[compare] {out.name}: re-probed ({comparison.probe}), top-1 {result['top1']:.2f}%")
        return result
    task1, fingerprint = comparison.task1.start(seed)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    final, epochs, forward, backward, images = train(strategy, steps, seed, comparison, out, task1)
    seconds = time.perf_counter() - start
    result = {
        "strategy": strategy,
        "steps": steps,
        "seed": seed,
        "tag": comparison.tag,
        "setting": comparison.setting,
        "last_task": comparison.last_task,
        "epochs": epochs,
        "probe": comparison.probe,
        "train_seconds": round(seconds, 1),
        "images_forward": int(forward),
        "images_backward": int(backward),
        # Compute per sample, the field's equal-compute measure (CLA, CLIMB): image-views per training image.
        "training_images": int(images),
        "forwards_per_image": round(forward / max(images, 1), 2),
        "backwards_per_image": round(backward / max(images, 1), 2),
        "checkpoint": str(final),
        "task1_fingerprint": fingerprint,
        "machine": machine_name(),
        "torch": torch.__version__,
    }
    task1_eval, random_eval = comparison.task1.evaluation(seed, prober), comparison.random_evaluation(seed)
    if not STRATEGIES[strategy].task_by_task:
        last = prober(final, seed)
    else:
        tasks = task_checkpoints(strategy, out, 2, comparison.last_task)
        rows = [task1_eval] + [prober(c, seed) for c in tasks]
        last = rows[-1]
        matrices = task_matrices(rows, comparison.last_task)
        randoms = {p: random_eval[f"{p}_tasks"][: comparison.last_task] for p in matrices}
        metrics = {p: continual_metrics(matrices[p], randoms[p]) for p in matrices}
        write_task_matrix(out, matrices, metrics)
        result.update({f"{m}": metrics["linear"][m] for m in METRICS})
        result.update({f"knn_{m}": metrics["knn"][m] for m in METRICS})
    probed = last if comparison.probe == "features" else prober(final, seed, comparison.probe)
    result.update(top1=probed["top1"], top5=probed["top5"], knn_top1=last["knn_top1"], knn_top5=last["knn_top5"])
    result_file.write_text(json.dumps(result, indent=2))
    print(f"[compare] {out.name}: top-1 {result['top1']:.2f}% in {seconds:.0f} s")
    return result
