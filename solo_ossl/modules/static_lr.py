"""solo-learn's ``static_lr``: param groups that keep their base lr while a schedule moves the others (SimSiam's
predictor, ``solo/methods/simsiam.py``: ``{"name": "predictor", ..., "static_lr": True}``). The offline warm-up +
cosine and every stream batch's one-cycle (SLCLRS) honour it through ``StaticLrs``."""

import torch
from torch.optim.lr_scheduler import LRScheduler


def static_groups(optimizer: torch.optim.Optimizer) -> dict[int, float]:
    """The indexes of the groups marked ``static_lr``, with the lr each keeps (its ``base_lr``)."""
    return {i: group["base_lr"] for i, group in enumerate(optimizer.param_groups) if group.get("static_lr")}


class StaticLrs(LRScheduler):
    """``inner``'s schedule for every param group but the static ones, which stay at their base lr (momentum and the
    rest of ``inner``'s work are unchanged). Its state is ``inner``'s; without static groups, use ``inner`` itself
    (``keep_static_lrs``)."""

    def __init__(self, inner, static: dict[int, float]) -> None:  # no LRScheduler.__init__: ``inner`` is the schedule
        self.inner, self.static, self.optimizer = inner, static, inner.optimizer
        self._pin()

    def _pin(self) -> None:
        for index, lr in self.static.items():
            self.optimizer.param_groups[index]["lr"] = lr

    def step(self, epoch=None) -> None:
        self.inner.step()
        self._pin()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.inner.load_state_dict(state_dict["inner"])
        self._pin()


def keep_static_lrs(schedule):
    """``schedule`` with the optimizer's static groups held at their base lr (``schedule`` itself where none is)."""
    static = static_groups(schedule.optimizer)
    return StaticLrs(schedule, static) if static else schedule
