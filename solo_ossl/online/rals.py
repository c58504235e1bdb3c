"""Reducible Anchor Loss Selection: train on the units whose loss rose most since the stream batch arrived."""

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from solo_ossl.utils.errors import SoloOsslError


def rals_select(current: torch.Tensor, anchor: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` units with the highest reducible anchor loss ``current - anchor``."""
    if current.shape != anchor.shape or current.ndim != 1:
        raise SoloOsslError(
            f"current and anchor losses must be 1-D of one shape, got {current.shape} and {anchor.shape}"
        )
    if not 0 < k <= current.numel():
        raise SoloOsslError(f"RALS cannot select k={k} of {current.numel()} candidates")
    return torch.topk(current.float() - anchor.float(), k).indices


def random_select(units: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``k`` of ``units`` indices uniformly at random: RALS's choice at a stream batch's first local step, where the
    model still equals the anchor and every score is exactly 0 (``topk`` would break the ties by position)."""
    if not 0 < k <= units:
        raise SoloOsslError(f"cannot select k={k} of {units} candidates")
    return torch.randperm(units, device=device)[:k]


def expand_groups(groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """Sample indices covered by the selected groups (group g = samples g*size .. g*size+size-1)."""
    return (groups.unsqueeze(1) * group_size + torch.arange(group_size, device=groups.device)).flatten()


@contextlib.contextmanager
def batch_stats_without_update(*modules: nn.Module) -> Iterator[None]:
    """Normalize with the batch's own statistics and leave BatchNorm running statistics untouched.

    RALS scores with batch statistics because that is how the training loss it stands for is computed; the
    running averages trail the weights, which move fast within a one-cycle schedule. They must not be updated
    by scoring passes, which are not training.
    """
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn, bn.training, bn.track_running_stats) for bn in bns]
    for bn in bns:
        bn.train()
        bn.track_running_stats = False
    try:
        yield
    finally:
        for bn, training, track in saved:
            bn.train(training)
            bn.track_running_stats = track


class FrozenCopy(nn.Module):
    """Frozen copy of backbone and projector, refreshed in place (not re-allocated): RALS's anchor at each stream
    batch, CaSSLe's previous-task model at each task."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.projector = copy.deepcopy(projector).requires_grad_(False)

    @torch.no_grad()
    def refresh(self, backbone: nn.Module, projector: nn.Module) -> None:
        self.backbone.load_state_dict(backbone.state_dict())
        self.projector.load_state_dict(projector.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))
