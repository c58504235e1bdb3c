"""Barlow Twins' redundancy-reduction loss, for the batch and per group of samples."""

import torch

from solo_ossl.losses.groups import split_groups

_EPS = 1e-5


def _standardize(z: torch.Tensor) -> torch.Tensor:
    """Standardize features over dim -2 as ``BatchNorm1d(affine=False)`` does in training mode."""
    mean = z.mean(dim=-2, keepdim=True)
    var = z.var(dim=-2, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + _EPS)


def _barlow_from_correlation(c: torch.Tensor, lamb: float, scale_loss: float) -> torch.Tensor:
    """Loss of (a stack of) cross-correlation matrices ``[..., D, D]``."""
    diag = torch.diagonal(c, dim1=-2, dim2=-1)
    on_diag = (diag - 1).pow(2).sum(-1)
    off_diag = c.pow(2).sum((-2, -1)) - diag.pow(2).sum(-1)
    return scale_loss * (on_diag + lamb * off_diag)


def barlow_loss_func(z1: torch.Tensor, z2: torch.Tensor, lamb: float = 0.0051, scale_loss: float = 0.1) -> torch.Tensor:
    """Barlow Twins loss of two views' projections ``[N, D]``."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1n, z2n = _standardize(z1.float()), _standardize(z2.float())
        c = z1n.T @ z2n / z1.size(0)
        return _barlow_from_correlation(c, lamb, scale_loss)


def barlow_loss_per_group(
    z1: torch.Tensor,
    z2: torch.Tensor,
    group_size: int = 16,
    lamb: float = 0.0051,
    scale_loss: float = 0.1,
) -> torch.Tensor:
    """Barlow Twins loss of each consecutive group of ``group_size`` rows, shape ``[B // group_size]``.

    Each group is standardized with its own statistics, as if it were a batch of its own. A group's D x D
    cross-correlation is never formed: with n = ``group_size`` rows, ``||C||_F^2 = sum((G1 G1^T) * (G2 G2^T)) / n^2``
    through the n x n Gram matrices, and ``diag(C) = sum_rows(G1 * G2) / n``. For groups of 16 and D = 2048 that is
    a 2048th of the memory (groups of 4 at D = 2048 would need 96 x 16 MB per view pair).
    """
    with torch.autocast(device_type=z1.device.type, enabled=False):
        g1 = _standardize(split_groups(z1, group_size, "Barlow Twins"))
        g2 = _standardize(split_groups(z2, group_size, "Barlow Twins"))
        diag = (g1 * g2).sum(-2) / group_size
        frobenius = ((g1 @ g1.transpose(1, 2)) * (g2 @ g2.transpose(1, 2))).sum((-2, -1)) / group_size**2
        on_diag = (diag - 1).pow(2).sum(-1)
        return scale_loss * (on_diag + lamb * (frobenius - diag.pow(2).sum(-1)))
