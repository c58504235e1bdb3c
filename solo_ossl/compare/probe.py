"""Linear probe and weighted kNN of checkpoints on the full training and test sets, with per-task accuracies."""

import json
from pathlib import Path

from solo_ossl.args import load_linear_config
from solo_ossl.eval import per_task_accuracy
from solo_ossl.run.linear import evaluate

# Overrides of a comparison that the probe's config takes too: where the data is, its precision, the backbone shape.
PROBE_KEYS = ("data.", "precision", "backbone.")


class Prober:
    def __init__(self, dataset: str, overrides: list[str], task_classes: list[list[int]]) -> None:
        data = [o for o in overrides if o.lstrip("+").startswith(PROBE_KEYS)]
        self.data = [o for o in data if "train_per_class" not in o and "tasks" not in o and "last_task" not in o]
        self.dataset, self.task_classes = dataset, task_classes

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
