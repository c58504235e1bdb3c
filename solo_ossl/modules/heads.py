"""Projection and prediction heads (small composable modules, as lightly's)."""

from torch import nn


def mlp_projector(features_dim: int, hidden: int, output: int) -> nn.Sequential:
    """Linear-BN-ReLU twice, then a linear output: Barlow Twins' and VICReg's projector."""
    return nn.Sequential(
        nn.Linear(features_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, output),
    )


def simclr_projector(features_dim: int, hidden: int, output: int) -> nn.Sequential:
    """Linear-ReLU-Linear: SimCLR's projector as solo-learn and CaSSLe build it."""
    return nn.Sequential(nn.Linear(features_dim, hidden), nn.ReLU(), nn.Linear(hidden, output))


def predictor_mlp(dim: int, hidden: int, output: int | None = None) -> nn.Sequential:
    """Linear-BN-ReLU-Linear: BYOL's and MoCo v3's predictor, and CaSSLe's distillation predictor."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, output or dim))
