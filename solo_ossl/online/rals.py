"""Reducible Anchor Loss Selection: train on the units whose loss rose most since the stream batch arrived."""

import torch

from solo_ossl.utils.errors import SoloOsslError


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` highest of the 1-D ``scores``: what every scored selection rule keeps, by its own score."""
    if scores.ndim != 1:
        raise SoloOsslError(f"unit scores must be 1-D, got {tuple(scores.shape)}")
    if not 0 < k <= scores.numel():
        raise SoloOsslError(f"cannot select k={k} of {scores.numel()} candidates")
    return torch.topk(scores, k).indices


def rals_select(current: torch.Tensor, anchor: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` units with the highest reducible anchor loss ``current - anchor``."""
    if current.shape != anchor.shape or current.ndim != 1:
        raise SoloOsslError(
            f"current and anchor losses must be 1-D of one shape, got {current.shape} and {anchor.shape}"
        )
    return top_k(current.float() - anchor.float(), k)


def random_select(units: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``k`` of ``units`` indices uniformly at random: RALS's choice at a stream batch's first local step, where the
    model still equals the anchor and every score is exactly 0 (``topk`` would break the ties by position)."""
    if not 0 < k <= units:
        raise SoloOsslError(f"cannot select k={k} of {units} candidates")
    return torch.randperm(units, device=device)[:k]


def expand_groups(groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """Sample indices covered by the selected groups (group g = samples g*size .. g*size+size-1)."""
    return (groups.unsqueeze(1) * group_size + torch.arange(group_size, device=groups.device)).flatten()
