from dataclasses import dataclass

import torch
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import contrastive_distill_loss, mocov3_loss_func, mocov3_loss_per_sample
from solo_ossl.methods.momentum import MomentumMethod


def mocov3_mlp(input_dim: int, hidden: int, output: int, last_bn: bool = True) -> nn.Sequential:
    """solo-learn's MoCo v3 MLP for ResNets (solo/methods/mocov3.py ``_build_mlp`` with 2 layers): bias-free linears,
    BN + ReLU between them, a BN without affine parameters after the last where ``last_bn``."""
    layers = [
        nn.Linear(input_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, output, bias=False),
    ]
    if last_bn:
        layers.append(nn.BatchNorm1d(output, affine=False))
    return nn.Sequential(*layers)


@dataclass
class MoCoV3Config(MethodConfig):
    pred_hidden_dim: int = 4096  # the predictor's hidden layer
    temperature: float = 0.2


class MoCoV3(MomentumMethod):
    """MoCo v3 (Chen, Xie & He, 2021): each view's query (the prediction) against the momentum target's keys of the
    other view; RALS scores each sample by the sum of both directions."""

    name = "mocov3"
    Config = MoCoV3Config
    default_group_size = 1

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return mocov3_mlp(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def build_predictor(self, method_cfg) -> nn.Module:
        return mocov3_mlp(method_cfg.proj_output_dim, method_cfg.pred_hidden_dim, method_cfg.proj_output_dim, False)

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        t = self.cfg.method.temperature
        # solo-learn sums the two directions (mocov3.py's training_step).
        return mocov3_loss_func(out1["p"], out2["momentum_z"], t) + mocov3_loss_func(out2["p"], out1["momentum_z"], t)

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        t = self.cfg.method.temperature
        per_sample = mocov3_loss_per_sample(out1["p"], out2["momentum_z"], t) + mocov3_loss_per_sample(
            out2["p"], out1["momentum_z"], t
        )
        return per_sample.view(-1, self.group_size).mean(1)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        return contrastive_distill_loss(predictions, frozen, self.cfg.cassle.temperature)  # as SimCLR's
