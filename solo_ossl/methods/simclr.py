from dataclasses import dataclass

import torch
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.losses import contrastive_distill_loss, simclr_loss_func, simclr_loss_per_sample
from solo_ossl.methods.base import BaseMethod
from solo_ossl.modules.heads import simclr_projector


@dataclass
class SimCLRConfig(MethodConfig):
    temperature: float = 0.2  # CaSSLe's (cassle/bash_files/continual/cifar/simclr_distill.sh)


class SimCLR(BaseMethod):
    """SimCLR (Chen et al., 2020): NT-Xent between two views; RALS scores each sample by l_ij + l_ji."""

    name = "simclr"
    Config = SimCLRConfig
    default_group_size = 1

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return simclr_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        z1, z2 = out1["z"], out2["z"]
        indexes = torch.arange(z1.size(0), device=z1.device).repeat(2)
        return simclr_loss_func(torch.cat([z1, z2]), indexes, self.cfg.method.temperature)

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        per_sample = simclr_loss_per_sample(out1["z"], out2["z"], self.cfg.method.temperature)
        return per_sample.view(-1, self.group_size).mean(1)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        return contrastive_distill_loss(predictions, frozen, self.cfg.cassle.temperature)
