from dataclasses import dataclass

import torch
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import predictive_distill_loss, simsiam_loss_func, simsiam_loss_per_sample
from solo_ossl.methods.base import BaseMethod
from solo_ossl.modules.heads import predictor_mlp


def simsiam_projector(features_dim: int, hidden: int, output: int) -> nn.Sequential:
    """solo-learn's SimSiam projector (solo/methods/simsiam.py): three bias-free linear layers, BN after each, the
    last BN without affine parameters."""
    return nn.Sequential(
        nn.Linear(features_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, output, bias=False),
        nn.BatchNorm1d(output, affine=False),
    )


@dataclass
class SimSiamConfig(MethodConfig):
    pred_hidden_dim: int = 512  # the predictor's hidden layer (the SimSiam paper's, Sec. 3; solo-learn's CIFAR recipe)


class SimSiam(BaseMethod):
    """SimSiam (Chen & He, 2021): each view's prediction regresses the other view's projection, stop-gradient, no
    momentum target; RALS scores each sample by the sum of both directions."""

    name = "simsiam"
    Config = SimSiamConfig
    # The predictor at a fixed lr, as solo-learn and CaSSLe train it (solo/methods/simsiam.py,
    # cassle/methods/simsiam.py: "static_lr": True): its base lr through every schedule, SLCLRS's included.
    predictor_keys = {"static_lr": True}
    default_group_size = 1
    scored_modules = ("backbone", "projector", "predictor")

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return simsiam_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def build_predictor(self, method_cfg) -> nn.Module:
        return predictor_mlp(method_cfg.proj_output_dim, method_cfg.pred_hidden_dim)

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        # solo-learn averages the two directions (simsiam.py's training_step).
        return (simsiam_loss_func(out1["p"], out2["z"]) + simsiam_loss_func(out2["p"], out1["z"])) / 2

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        per_sample = simsiam_loss_per_sample(out1["p"], out2["z"]) + simsiam_loss_per_sample(out2["p"], out1["z"])
        return per_sample.view(-1, self.group_size).mean(1)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        return predictive_distill_loss(predictions, frozen)  # CaSSLe ships no continual SimSiam script
