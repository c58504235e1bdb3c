"""Continual-learning metrics from a per-task accuracy matrix (Chaudhry et al., 2018; Lopez-Paz and Ranzato, 2017)."""

from collections.abc import Sequence

import torch


def per_task_accuracy(predictions: torch.Tensor, targets: torch.Tensor, task_classes: Sequence[Sequence[int]]) -> list:
    """Accuracy (percent) on the test samples of each task's classes."""
    out = []
    for classes in task_classes:
        member = torch.isin(targets, torch.as_tensor(list(classes)))
        out.append(
            100 * (predictions[member] == targets[member]).float().mean().item() if member.any() else float("nan")
        )
    return out


def continual_metrics(acc_matrix, random_init: Sequence[float] | None = None) -> dict[str, float]:
    """Average accuracy, forgetting and forward transfer of ``acc_matrix[t][i]``: the accuracy on task i's classes
    after training through task t (both 0-based here; T tasks, a T x T matrix).

    - ``average``: ``mean_i a[T-1][i]``;
    - ``forgetting``: ``mean_{i<T-1} max_{t<T-1} (a[t][i] - a[T-1][i])``;
    - ``forward_transfer``: ``mean_{i>=1} (a[i-1][i] - r[i])``, with ``r`` the accuracy of a randomly initialized
      backbone on each task (NaN without ``random_init``).
    """
    a = torch.as_tensor(acc_matrix, dtype=torch.float64)
    if a.ndim != 2 or a.size(0) != a.size(1) or a.size(0) < 2:
        raise ValueError(f"acc_matrix must be T x T with T >= 2, got shape {tuple(a.shape)}")
    last = a.size(0) - 1
    forgetting = (a[:last, :last].max(dim=0).values - a[last, :last]).mean()
    forward = float("nan")
    if random_init is not None:
        r = torch.as_tensor(random_init, dtype=torch.float64)
        forward = (torch.diagonal(a, offset=1) - r[1:]).mean().item()
    return {"average": a[last].mean().item(), "forgetting": forgetting.item(), "forward_transfer": forward}
