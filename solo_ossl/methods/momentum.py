"""What methods with a momentum (EMA) target share (BYOL, MoCo v3): a momentum copy of the backbone and projector,
updated after every optimizer step (``BaseMethod.after_optimizer_step``), whose projection of each view the loss
reads as ``momentum_z``; and a predictor on the online projection."""

import copy

import torch
from torch import nn

from solo_ossl.methods.base import BaseMethod


class MomentumMethod(BaseMethod):
    scored_modules = ("backbone", "projector", "predictor", "momentum_backbone", "momentum_projector")

    def __init__(self, cfg, num_classes: int, mean, std) -> None:
        super().__init__(cfg, num_classes, mean, std)
        # solo-learn's initialize_momentum_params: the target starts as a copy of the online modules, frozen.
        self.momentum_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.momentum_backbone), (self.projector, self.momentum_projector)]

    def forward(self, x: torch.Tensor, momentum: bool = True) -> dict[str, torch.Tensor]:
        out = super().forward(x)
        if momentum:
            with torch.no_grad():
                out["momentum_z"] = self.momentum_projector(self.momentum_backbone(self._prepare(x)))
        return out

    def load_pretrained(self, path: str) -> set[str]:
        """As ``BaseMethod.load_pretrained``; a momentum target the checkpoint lacks (a task-1 model of another
        method's layout, a bare backbone) starts as a copy of its loaded online modules."""
        loaded = super().load_pretrained(path)
        for online, target in (("backbone", "momentum_backbone"), ("projector", "momentum_projector")):
            if target not in loaded:
                self.get_submodule(target).load_state_dict(self.get_submodule(online).state_dict())
        return loaded
