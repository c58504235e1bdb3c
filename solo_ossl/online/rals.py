"""Reducible Anchor Loss Selection: train on the units whose loss rose most since the stream batch arrived; and the
choices every rule builds on (top-k, uniform at random)."""

import torch

from solo_ossl.utils.errors import SoloOsslError


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` highest of the 1-D ``scores``: what every scored selection rule keeps, by its own score."""
    if scores.ndim != 1:
        raise SoloOsslError(f"unit scores must be 1-D, got {tuple(scores.shape)}")
    if not 0 < k <= scores.numel():
        raise SoloOsslError(f"cannot select k={k} of {scores.numel()} candidates")
    return torch.topk(scores, k).indices


def reducible_anchor_loss(current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """RALS's score of every unit: its loss under the current model minus its loss under the anchor."""
    if current.shape != anchor.shape or current.ndim != 1:
        raise SoloOsslError(
            f"current and anchor losses must be 1-D of one shape, got {current.shape} and {anchor.shape}"
        )
    return current.float() - anchor.float()


def rals_select(current: torch.Tensor, anchor: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` units with the highest reducible anchor loss ``current - anchor``."""
    return top_k(reducible_anchor_loss(current, anchor), k)


def random_select(units: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``k`` of ``units`` indices uniformly at random: RALS's choice at a stream batch's first local step, where the
    model still equals the anchor and every score is exactly 0 (``topk`` would break the ties by position)."""
    if not 0 < k <= units:
        raise SoloOsslError(f"cannot select k={k} of {units} candidates")
    return torch.randperm(units, device=device)[:k]
