from dataclasses import dataclass

import torch
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import barlow_loss_func, barlow_loss_per_group
from solo_ossl.methods.base import BaseMethod
from solo_ossl.modules.heads import mlp_projector


@dataclass
class BarlowTwinsConfig(MethodConfig):
    lamb: float = 0.005  # CaSSLe's default (cassle/methods/barlow_twins.py)
    scale_loss: float = 0.1


class BarlowTwins(BaseMethod):
    """Barlow Twins (Zbontar et al., 2021); RALS scores groups of ``group_size`` samples (the paper's N_p)."""

    name = "barlow_twins"
    Config = BarlowTwinsConfig
    default_group_size = 16

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return mlp_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        m = self.cfg.method
        return barlow_loss_func(out1["z"], out2["z"], lamb=m.lamb, scale_loss=m.scale_loss)

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        m = self.cfg.method
        return barlow_loss_per_group(out1["z"], out2["z"], self.group_size, lamb=m.lamb, scale_loss=m.scale_loss)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        # Mean over the views of Barlow Twins' loss between prediction and frozen projection, with CaSSLe's own
        # lambda and scale (cassle/distillers/decorrelative.py: distill_barlow_lamb 5e-3, distill_scale_loss 0.1).
        c = self.cfg.cassle
        losses = [
            barlow_loss_func(p, z, lamb=c.barlow_lamb, scale_loss=c.barlow_scale_loss)
            for p, z in zip(predictions, frozen, strict=True)
        ]
        return sum(losses) / len(losses)
