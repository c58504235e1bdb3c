"""Single Local Cycle Learning Rate Scheduler: PyTorch's cosine ``OneCycleLR`` over the N steps of one stream batch."""

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import OneCycleLR


def slclrs(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    max_lr: float | Sequence[float],
    pct_start: float = 0.5,
    div_factor: float = 10.0,
    final_div_factor: float = 1e4,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> OneCycleLR:
    """A fresh one-cycle schedule: lr max_lr/div_factor -> max_lr -> tiny, momentum max -> base -> max.

    Build one per stream batch and call ``step()`` after each of its ``total_steps`` optimizer steps.
    """
    if pct_start * total_steps <= 1:
        raise ValueError(
            f"a one-cycle schedule over {total_steps} steps with pct_start={pct_start} has no warm-up phase "
            "(OneCycleLR needs pct_start x steps > 1): use more steps or a larger pct_start"
        )
    return OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
