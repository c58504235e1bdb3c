"""CaSSLe (Fini et al., CVPR 2022) as a distillation wrapper around any method.

A predictor maps the current projections to those of a frozen copy of the model taken at the start of the task;
the loss is the method's own ``distill_loss`` over both views (CaSSLe's symmetric contrastive loss for SimCLR,
Barlow Twins' loss per view for Barlow Twins), weighted by ``distill_lamb``. The predictor carries over from task to
task: CaSSLe loads the whole previous-task state (cassle/main_pretrain.py, ``load_state_dict(strict=False)``).
The frozen copy normalizes with batch statistics, as CaSSLe's frozen model (kept in train mode) does, and its
running statistics are never updated.

``CassleRegime`` composes this around any method: its modules are registered on the method as ``distiller``, so
checkpoints keep CaSSLe's weights under ``distiller.predictor.*``.
"""

import copy
from pathlib import Path

import torch
from torch import nn

from solo_ossl.methods.base import Regime
from solo_ossl.online.rals import FrozenCopy, batch_stats_without_update
from solo_ossl.utils.checkpoint import load_into, submodule_state
from solo_ossl.utils.errors import SoloOsslError


class Distiller(nn.Module):
    def __init__(self, method, cassle_cfg) -> None:
        super().__init__()
        dim, hidden = method.cfg.method.proj_output_dim, cassle_cfg.proj_hidden_dim
        self.predictor = nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.frozen = FrozenCopy(method.backbone, method.projector)
        self.lamb = cassle_cfg.distill_lamb

    def refresh(self, method) -> None:
        """Freeze the method's current weights as the previous-task model (at the start of each task)."""
        self.frozen.refresh(method.backbone, method.projector)

    def frozen_projections(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), batch_stats_without_update(self.frozen):
            return self.frozen(x)

    def loss(self, method, views: list[torch.Tensor], projections: list[torch.Tensor]) -> torch.Tensor:
        predictions = [self.predictor(z) for z in projections]
        frozen = [self.frozen_projections(method._prepare(v)) for v in views]
        return self.lamb * method.distill_loss(predictions, frozen)


class CassleRegime(Regime):
    """Offline training of one task plus CaSSLe's distillation term (``train_distill_loss``)."""

    def __init__(self, cassle_cfg) -> None:
        self.cfg = cassle_cfg
        self.distiller: Distiller | None = None

    def attach(self, method) -> None:
        super().attach(method)
        self.distiller = Distiller(method, self.cfg)
        method.distiller = self.distiller

    def extra_losses(self, method, views, projections):
        return {"train_distill_loss": self.distiller.loss(method, views, projections)}

    def trained_modules(self) -> list[nn.Module]:
        return [self.distiller.predictor]

    def on_load_pretrained(self, method, state_dict: dict, path: str) -> None:
        # The predictor carries over from the previous task (a task-1 checkpoint has none yet); the loaded model is
        # the previous-task model the distiller freezes.
        predictor = submodule_state(state_dict, "distiller.predictor.")
        if predictor:
            load_into(self.distiller.predictor, predictor, "distiller.predictor", path)
        self.distiller.refresh(method)


def run_continual(cfg, callbacks=()) -> list[Path]:
    """CaSSLe over tasks 2..``data.num_tasks``, one offline run per task: task t starts from task t-1's final
    checkpoint (``pretrained_ckpt``, the task-1 model, for task 2), trains ``max_epochs`` on its classes and distils
    from the model frozen at its start. Task t runs in ``<output_dir>/<name>/task<t>``; a task whose final checkpoint
    exists is not trained again, so an interrupted sequence continues where it stopped (within a task, pass
    ``++resume`` as for any offline run). Returns the tasks' final checkpoints."""
    from solo_ossl.pretrain import run_pretrain

    if not cfg.pretrained_ckpt:
        raise SoloOsslError("CaSSLe starts from the task-1 model: pass ++pretrained_ckpt=<task-1 checkpoint>")
    if cfg.online.enabled:
        raise SoloOsslError("main_continual.py trains task by task offline: use a pretrain/ config, not an online/ one")
    root, previous, finals = Path(cfg.output_dir) / cfg.name, cfg.pretrained_ckpt, []
    for task in range(2, cfg.data.num_tasks + 1):
        final = root / f"task{task}" / "final.ckpt"
        if final.is_file():
            print(f"[continual] task {task}: done before ({final}), skipped")
        else:
            task_cfg = copy.deepcopy(cfg)
            task_cfg.data.tasks = [task]
            task_cfg.cassle.enabled = True
            task_cfg.pretrained_ckpt = str(previous)
            task_cfg.output_dir, task_cfg.name = str(root), f"task{task}"
            final = run_pretrain(task_cfg, list(callbacks))
        finals.append(final)
        previous = final
    return finals
