"""A log of what a selection rule chose (``online.log_candidates``): per local step and candidate, whether it came
from the stream or the memory, its label, its loss under the current model and under the anchor, and whether it was
kept; per local step, the gradient norm and the update norm of the trained weights. Written to
``online_candidates.npz`` (one row per candidate and step; NaN where a step was not scored)."""

from pathlib import Path

import numpy as np
import torch


class CandidateLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: dict[str, list[np.ndarray]] = {
            k: [] for k in ("stream_batch", "step", "is_stream", "label", "kept", "current", "anchor")
        }
        self.steps: dict[str, list[float]] = {k: [] for k in ("stream_batch", "step", "grad_norm", "update_norm")}
        self.previous: list[torch.Tensor] | None = None

    def __call__(self, position: int, method, record: dict) -> None:
        selected, n_stream, group = record["selected"], record["n_stream"], method.group_size
        candidates = n_stream + len(record["draw"].slots)
        kept = np.ones(candidates, dtype=bool)
        if selected.kept is not None:
            kept[:] = False
            kept[selected.kept.cpu().numpy()] = True
        nan = np.full(candidates, np.nan, dtype=np.float32)
        current, anchor = nan, nan
        if selected.current is not None:  # unit losses, repeated over each unit's samples
            current = selected.current.float().repeat_interleave(group).cpu().numpy()
            anchor = selected.anchor.float().repeat_interleave(group).cpu().numpy()
        labels = record["candidate_targets"].cpu().numpy()
        for key, value in (
            ("stream_batch", np.full(candidates, position, dtype=np.int32)),
            ("step", np.full(candidates, record["step"], dtype=np.int16)),
            ("is_stream", np.arange(candidates) < n_stream),
            ("label", labels.astype(np.int16)),
            ("kept", kept),
            ("current", current),
            ("anchor", anchor),
        ):
            self.columns[key].append(value)
        trained = [p for p in method.parameters() if p.requires_grad]
        # The gradients live on the parameters themselves (a detached view has none).
        grads = [p.grad.float() for p in trained if p.grad is not None]
        grad = torch.sqrt(sum((g**2).sum() for g in grads)) if grads else float("nan")
        weights = [p.detach() for p in trained]
        if self.previous is None:
            update = float("nan")
        else:
            update = torch.sqrt(sum(((w.float() - b) ** 2).sum() for w, b in zip(weights, self.previous, strict=True)))
        self.previous = [w.float().clone() for w in weights]
        for key, value in (
            ("stream_batch", position),
            ("step", record["step"]),
            ("grad_norm", grad),
            ("update_norm", update),
        ):
            self.steps[key].append(float(value))

    def write(self) -> None:
        arrays = {k: np.concatenate(v) for k, v in self.columns.items() if v}
        arrays.update({f"step_{k}": np.asarray(v) for k, v in self.steps.items()})
        np.savez_compressed(self.path, **arrays)
