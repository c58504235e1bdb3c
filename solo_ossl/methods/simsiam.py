import torch
from torch import nn

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


class SimSiam(BaseMethod):
    """SimSiam (Chen & He, 2021): each view's prediction regresses the other view's projection, stop-gradient, no
    momentum target; RALS scores each sample by the sum of both directions."""

    name = "simsiam"
    default_group_size = 1
    scored_modules = ("backbone", "projector", "predictor")

    def __init__(self, cfg, num_classes: int, mean, std) -> None:
        super().__init__(cfg, num_classes, mean, std)
        m = cfg.method
        self.predictor = predictor_mlp(m.proj_output_dim, m.pred_hidden_dim)

    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        return simsiam_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    @property
    def learnable_params(self) -> list[dict]:
        # The predictor at a fixed lr, as solo-learn and CaSSLe train it (solo/methods/simsiam.py,
        # cassle/methods/simsiam.py: "static_lr": True): its base lr through every schedule, SLCLRS's included.
        return [*super().learnable_params, {"name": "predictor", "params": self.predictor, "static_lr": True}]

    def forward(self, x: torch.Tensor, momentum: bool = True) -> dict[str, torch.Tensor]:
        out = super().forward(x)
        out["p"] = self.predictor(out["z"])
        return out

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        # solo-learn averages the two directions (simsiam.py's training_step).
        return (simsiam_loss_func(out1["p"], out2["z"]) + simsiam_loss_func(out2["p"], out1["z"])) / 2

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        per_sample = simsiam_loss_per_sample(out1["p"], out2["z"]) + simsiam_loss_per_sample(out2["p"], out1["z"])
        return per_sample.view(-1, self.group_size).mean(1)

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        return predictive_distill_loss(predictions, frozen)  # CaSSLe ships no continual SimSiam script
