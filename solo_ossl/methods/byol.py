from dataclasses import dataclass

import torch
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import byol_loss_func, byol_loss_per_sample, predictive_distill_loss
from solo_ossl.methods.momentum import MomentumMethod
from solo_ossl.modules.heads import predictor_mlp


@dataclass
class BYOLConfig(MethodConfig):
    pred_hidden_dim: int = 4096  # the predictor's hidden layer


class BYOL(MomentumMethod):
    """BYOL (Grill et al., 2020): the prediction of each view regresses the momentum target's projection of the other
    (solo-learn's solo/methods/byol.py); RALS scores each sample by the sum of both directions."""

    name = "byol"
    Config = BYOLConfig
    default_group_size = 1

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return predictor_mlp(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def build_predictor(self, method_cfg) -> nn.Module:
        return predictor_mlp(method_cfg.proj_output_dim, method_cfg.pred_hidden_dim)

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        # solo-learn sums the two directions (byol.py's training_step).
        return byol_loss_func(out2["p"], out1["momentum_z"]) + byol_loss_func(out1["p"], out2["momentum_z"])

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        per_sample = byol_loss_per_sample(out2["p"], out1["momentum_z"]) + byol_loss_per_sample(
            out1["p"], out2["momentum_z"]
        )
        return per_sample.view(-1, self.group_size).mean(1)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        return predictive_distill_loss(predictions, frozen)
