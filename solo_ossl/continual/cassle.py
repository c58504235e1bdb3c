"""CaSSLe (Fini et al., CVPR 2022): distillation from the model frozen at the start of the task, around any method.

A predictor maps the current projections to those of a frozen copy of the model taken at the start of the task;
the loss is the method's own ``distill_loss`` over both views (CaSSLe's symmetric contrastive loss for SimCLR,
Barlow Twins' loss per view for Barlow Twins), weighted by ``distill_lamb``. The predictor carries over from task to
task: CaSSLe loads the whole previous-task state (cassle/main_pretrain.py, ``load_state_dict(strict=False)``).
The frozen copy normalizes with batch statistics, as CaSSLe's frozen model (kept in train mode) does, and its
running statistics are never updated.

The regime ``solo_ossl.regimes.cassle`` registers the distiller on the method as ``distiller``, so checkpoints keep
CaSSLe's weights under ``distiller.predictor.*`` and the frozen copy under ``distiller.frozen.*``.
"""

import torch
from torch import nn

from solo_ossl.modules.frozen import FrozenCopy, batch_stats_without_update
from solo_ossl.modules.heads import predictor_mlp


class Distiller(nn.Module):
    def __init__(self, method, cassle_cfg) -> None:
        super().__init__()
        dim = method.cfg.method.proj_output_dim
        self.predictor = predictor_mlp(dim, cassle_cfg.proj_hidden_dim)
        self.frozen = FrozenCopy(method, method.frozen_modules)
        self.lamb = cassle_cfg.distill_lamb

    def refresh(self, method) -> None:
        """Freeze the method's current weights as the previous-task model (at the start of each task)."""
        self.frozen.refresh(method)

    def frozen_projections(self, method, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), batch_stats_without_update(method):
            return self.frozen.run(method, x, False)["z"]

    def loss(self, method, views: list[torch.Tensor], outputs: list[dict]) -> torch.Tensor:
        predictions = [self.predictor(out["z"]) for out in outputs]
        frozen = [self.frozen_projections(method, v) for v in views]
        return self.lamb * method.global_distill_loss(predictions, frozen)
