"""Single Local Cycle Learning Rate Scheduler: PyTorch's cosine ``OneCycleLR`` over the N steps of one stream batch;
and the constant schedule that isolates it (``online.schedule``)."""

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import OneCycleLR

from solo_ossl.modules.static_lr import keep_static_lrs


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


class ConstantSchedule:
    """Every param group at a fixed lr and momentum for the whole stream batch (``step`` changes nothing)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lrs: Sequence[float], momenta: Sequence[float]) -> None:
        self.optimizer = optimizer
        for group, lr, momentum in zip(optimizer.param_groups, lrs, momenta, strict=True):
            group["lr"], group["momentum"] = lr, momentum

    def step(self) -> None:
        pass


def one_cycle_means(total_steps: int, max_lr: float, **one_cycle) -> tuple[float, float]:
    """The mean lr and momentum that ``slclrs`` applies over its ``total_steps`` steps (the values before each
    step), from the schedule itself on a throwaway optimizer."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr, momentum=0.9)
    schedule = slclrs(optimizer, total_steps, max_lr, **one_cycle)
    lrs, momenta = [], []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        schedule.step()
    return sum(lrs) / total_steps, sum(momenta) / total_steps


def constant_at_one_cycle_mean(
    optimizer: torch.optim.Optimizer, total_steps: int, max_lr: Sequence[float], **one_cycle
) -> ConstantSchedule:
    """Each group at the mean lr (and momentum) of the one-cycle schedule it would get: the same average step size
    without the cycle (the ablation that isolates SLCLRS)."""
    means = [one_cycle_means(total_steps, lr, **one_cycle) for lr in max_lr]
    return ConstantSchedule(optimizer, [m[0] for m in means], [m[1] for m in means])


# online.schedule: how the lr and momentum move within each stream batch.
SCHEDULES = {"one_cycle": slclrs, "constant": constant_at_one_cycle_mean}


def pct_start_for(online_cfg, steps: int) -> float:
    """SLCLRS's warm-up share for a stream batch of ``steps`` local steps (``online.pct_start_by_steps``)."""
    return float(online_cfg.pct_start_by_steps.get(steps, online_cfg.pct_start))


def stream_batch_schedule(optimizer: torch.optim.Optimizer, steps: int, online_cfg, classifier_lr: float):
    """The schedule of one stream batch of ``steps`` local steps (``online.schedule``): SLCLRS's fresh one-cycle
    (every group peaks at ``online.max_lr``, the classifier's at its own ``classifier_lr``), or the constant schedule
    at its mean. A static_lr group (SimSiam's predictor) keeps its base lr."""
    max_lrs = [classifier_lr if g.get("name") == "classifier" else online_cfg.max_lr for g in optimizer.param_groups]
    schedule = SCHEDULES[online_cfg.schedule](
        optimizer,
        steps,
        max_lrs,
        pct_start=pct_start_for(online_cfg, steps),
        div_factor=online_cfg.div_factor,
        final_div_factor=online_cfg.final_div_factor,
        base_momentum=online_cfg.base_momentum,
        max_momentum=online_cfg.max_momentum,
    )
    return keep_static_lrs(schedule)
