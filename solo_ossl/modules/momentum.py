"""Momentum (EMA) targets: solo-learn's update and cosine tau schedule (solo/utils/momentum.py)."""

import math

import torch
from torch import nn


def cosine_tau(step: int, max_steps: int, base_tau: float, final_tau: float) -> float:
    """tau after ``step`` of ``max_steps`` optimizer steps: ``base_tau`` at 0, rising on a cosine to ``final_tau``."""
    if max_steps <= 0:
        return final_tau
    return final_tau - (final_tau - base_tau) * (math.cos(math.pi * min(step, max_steps) / max_steps) + 1) / 2


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """``target <- tau * target + (1 - tau) * online``, parameter by parameter (buffers are not averaged, as in
    solo-learn's ``MomentumUpdater``)."""
    for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
        p_target.mul_(tau).add_(p_online.detach(), alpha=1 - tau)
