from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import vicreg_loss_func, vicreg_loss_per_group
from solo_ossl.methods.base import BaseMethod
from solo_ossl.modules.heads import mlp_projector


@dataclass
class VICRegConfig(MethodConfig):
    # The loss weights (cassle/bash_files/continual/cifar/vicreg_distill.sh).
    sim_loss_weight: float = 25.0
    var_loss_weight: float = 25.0
    cov_loss_weight: float = 1.0


class VICReg(BaseMethod):
    """VICReg (Bardes et al., 2022); RALS scores groups of ``group_size`` samples, as for Barlow Twins (its variance
    and covariance terms need several samples)."""

    name = "vicreg"
    Config = VICRegConfig
    default_group_size = 16

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return mlp_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def _weights(self) -> dict[str, float]:
        m = self.cfg.method
        return dict(
            sim_loss_weight=m.sim_loss_weight, var_loss_weight=m.var_loss_weight, cov_loss_weight=m.cov_loss_weight
        )

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        return vicreg_loss_func(out1["z"], out2["z"], **self._weights())

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        return vicreg_loss_per_group(out1["z"], out2["z"], self.group_size, **self._weights())

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        # CaSSLe's VICReg distiller is predictive MSE, VICReg's invariance term between the prediction and the frozen
        # projection of each view (cassle/distillers/predictive_mse.py, chosen by
        # cassle/bash_files/continual/cifar/vicreg_distill.sh), weighted by its distill_lamb 25 (the config's).
        losses = [F.mse_loss(p.float(), z.float()) for p, z in zip(predictions, frozen, strict=True)]
        return sum(losses) / len(losses)
