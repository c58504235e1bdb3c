"""VICReg's variance-invariance-covariance loss (Bardes et al., 2022), for the batch and per group of samples."""

import torch
import torch.nn.functional as F

from solo_ossl.losses.groups import split_groups

_EPS = 1e-4


def _variance(z: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - std))`` over the features, the std unbiased over dim -2 (one value per leading index)."""
    return F.relu(1 - torch.sqrt(z.var(dim=-2) + _EPS)).mean(-1)


def _covariance(z: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal entries of the covariance over dim -2 (centred, divided by N - 1), over D.

    Through the N x N Gram matrix: ``||C||_F^2 = ||Z Z^T||_F^2 / (N - 1)^2`` for centred Z, which is cheaper than the
    D x D covariance when N < D (groups of 16 against 2048 features)."""
    n, dim = z.shape[-2:]
    zc = z - z.mean(dim=-2, keepdim=True)
    frobenius = (zc @ zc.transpose(-1, -2)).pow(2).sum((-2, -1)) / (n - 1) ** 2
    diagonal = (zc.pow(2).sum(-2) / (n - 1)).pow(2).sum(-1)
    return (frobenius - diagonal) / dim


def _vicreg(z1, z2, sim_loss_weight: float, var_loss_weight: float, cov_loss_weight: float) -> torch.Tensor:
    invariance = (z1 - z2).pow(2).mean((-2, -1))
    variance = _variance(z1) + _variance(z2)
    covariance = _covariance(z1) + _covariance(z2)
    return sim_loss_weight * invariance + var_loss_weight * variance + cov_loss_weight * covariance


def vicreg_loss_func(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_loss_weight: float = 25.0,
    var_loss_weight: float = 25.0,
    cov_loss_weight: float = 1.0,
) -> torch.Tensor:
    """VICReg loss of two views' projections ``[N, D]``: ``sim * mse(z1, z2)`` + ``var * (v(z1) + v(z2))`` +
    ``cov * (c(z1) + c(z2))``, v the mean hinge of the unbiased std at 1 and c the off-diagonal covariance energy
    over D (cassle/losses/vicreg.py, solo-learn's ``vicreg_loss_func``)."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        return _vicreg(z1.float(), z2.float(), sim_loss_weight, var_loss_weight, cov_loss_weight)


def vicreg_loss_per_group(
    z1: torch.Tensor,
    z2: torch.Tensor,
    group_size: int = 16,
    sim_loss_weight: float = 25.0,
    var_loss_weight: float = 25.0,
    cov_loss_weight: float = 1.0,
) -> torch.Tensor:
    """VICReg loss of each consecutive group of ``group_size`` rows, as if it were a batch of its own, shape
    ``[B // group_size]`` (its variance and covariance need several samples, as Barlow Twins' per-group loss)."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        g1, g2 = split_groups(z1, group_size, "VICReg"), split_groups(z2, group_size, "VICReg")
        return _vicreg(g1, g2, sim_loss_weight, var_loss_weight, cov_loss_weight)
