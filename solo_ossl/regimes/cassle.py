"""The CaSSLe regime: offline training of one task plus CaSSLe's distillation term (``train_distill_loss``); the
continual driver runs it task after task (``solo_ossl.run.continual``)."""

from torch import nn

from solo_ossl.args.validate import at_least
from solo_ossl.continual.cassle import Distiller
from solo_ossl.regimes.base import Regime
from solo_ossl.utils.checkpoint import load_into, submodule_state


class CassleRegime(Regime):
    name = "cassle"
    forwards_per_trained_view = 2  # the model's, and the frozen previous-task model's (no gradient)

    def __init__(self, cassle_cfg) -> None:
        self.cfg = cassle_cfg
        self.distiller: Distiller | None = None

    @classmethod
    def validate(cls, cfg, group_size: int) -> None:
        at_least("cassle", cfg.cassle, 0, "distill_lamb")
        at_least("cassle", cfg.cassle, 1, "proj_hidden_dim")

    @classmethod
    def from_config(cls, cfg, dataset=None) -> "CassleRegime":
        return cls(cfg.cassle)

    def attach(self, method) -> None:
        super().attach(method)
        self.distiller = Distiller(method, self.cfg)
        method.distiller = self.distiller

    def extra_losses(self, method, views, outputs):
        return {"train_distill_loss": self.distiller.loss(method, views, outputs)}

    def trained_modules(self) -> list[nn.Module]:
        return [self.distiller.predictor]

    def on_load_pretrained(self, method, state_dict: dict, path: str) -> None:
        # The predictor carries over from the previous task (a task-1 checkpoint has none yet); the loaded model is
        # the previous-task model the distiller freezes.
        predictor = submodule_state(state_dict, "distiller.predictor.")
        if predictor:
            load_into(self.distiller.predictor, predictor, "distiller.predictor", path)
        self.distiller.refresh(method)
