"""The online regime (paper Sec. 4): one Lightning training step is one stream batch, trained on for N local
optimizer steps (``solo_ossl.online.algorithm``) with manual optimization; this file is its Lightning side (the
optimizer Lightning built, ``manual_backward``, logging, checkpoints) and its config section's validator."""

import functools
from pathlib import Path

import torch

from solo_ossl.args.validate import at_least, one_of
from solo_ossl.memory import POLICIES
from solo_ossl.methods.base import Regime
from solo_ossl.online.algorithm import train_stream_batch
from solo_ossl.online.candidates import CandidateLog
from solo_ossl.online.learner import OnlineLearner, memory_batch_size, pct_start_for
from solo_ossl.online.selection import selection_choices
from solo_ossl.online.slclrs import SCHEDULES
from solo_ossl.online.steplog import append_step_rows, truncate_step_rows
from solo_ossl.utils.distributed import check_replicas
from solo_ossl.utils.errors import SoloOsslError


def validate_online(online, group_size: int) -> None:
    """The online section for a method scoring units of ``group_size`` samples."""
    at_least("online", online, 1, "steps_per_batch", "stream_batch_size", "checkpoint_every")
    at_least("online", online, 0, "max_stream_batches")
    at_least("online.memory", online.memory, 1, "capacity")
    if online.time_budget_s < 0:
        raise SoloOsslError(f"online.time_budget_s must be >= 0 (0: a fixed N), got {online.time_budget_s}")
    pct_start = pct_start_for(online, online.steps_per_batch)
    if pct_start * online.steps_per_batch <= 1:
        raise SoloOsslError(
            f"online.steps_per_batch={online.steps_per_batch} x online.pct_start={pct_start} must exceed 1 for a "
            "one-cycle schedule: use at least 3 steps (pct_start 0.5)"
        )
    one_of("online.memory.policy", online.memory.policy, POLICIES)
    one_of("online.selection", online.selection, selection_choices())
    one_of("online.schedule", online.schedule, SCHEDULES)
    if online.selection == "none":
        return
    k, memory = online.k, memory_batch_size(online)
    candidates = online.stream_batch_size + memory
    if k > candidates:
        raise SoloOsslError(
            f"online.k={k} is larger than the {candidates} candidates per step (stream {online.stream_batch_size} "
            f"+ memory {memory}): lower k or raise online.memory.batches"
        )
    if k < group_size or k % group_size:
        raise SoloOsslError(f"online.k={k} must be a positive multiple of method.group_size={group_size}")
    for what, size in (("online.stream_batch_size", online.stream_batch_size), ("memory batch", memory)):
        if size % group_size:
            raise SoloOsslError(
                f"{what} {size} is not divisible by method.group_size {group_size}: selection keeps whole groups"
            )


class OnlineRegime(Regime):
    """Memory, SLCLRS and a selection rule around any method (``learner``: their state). ``steps_csv`` receives a
    row per local step."""

    name = "online"
    driver = "stream"
    augments_batches = False
    manual_optimization = True

    def __init__(self, online_cfg, dataset=None, steps_csv: Path | None = None) -> None:
        self.learner = OnlineLearner(online_cfg, dataset)
        self.steps_csv = steps_csv
        self.candidates: CandidateLog | None = None  # online.log_candidates: set by the driver with the run folder
        self.method = None

    @classmethod
    def validate(cls, cfg, group_size: int) -> None:
        validate_online(cfg.online, group_size)

    @classmethod
    def from_config(cls, cfg, dataset=None) -> "OnlineRegime":
        return cls(cfg.online, dataset)

    def attach(self, method) -> None:
        super().attach(method)
        self.method = method

    def checkpoint_state(self) -> dict:
        return {"online": self.learner.sharded_state(self.method.device)}

    def resume_from(self, checkpoint: dict) -> None:
        self.learner.resume_from(checkpoint, self.method)
        if self.steps_csv is not None and self.learner.rank == 0:
            truncate_step_rows(self.steps_csv, self.learner.position)

    def on_train_start(self, method) -> None:
        learner = self.learner
        if learner.pending_optimizer_state is not None:
            method.optimizers().optimizer.load_state_dict(learner.pending_optimizer_state)
            learner.pending_optimizer_state = None
        plugin = method.trainer.precision_plugin
        state = learner.pending_precision_state.pop(type(plugin).__qualname__, None)
        if state:
            plugin.load_state_dict(state)
        learner.pending_precision_state = {}

    def on_train_end(self, method) -> None:
        if self.candidates is not None and self.learner.rank == 0:
            self.candidates.write()

    def training_step(self, method, batch, batch_idx: int) -> torch.Tensor:
        learner = self.learner
        learner.restore_pending_rng(method.device)
        on_step = None
        if self.candidates is not None:
            self.candidates.start(method)
            on_step = functools.partial(self.candidates, learner.position, method)
        log, values = train_stream_batch(learner, method, method.optimizers(), batch, method.manual_backward, on_step)
        learner.end_stream_batch(log, values)
        if learner.world > 1 and learner.cfg.check_replicas:
            check_replicas(method, f"stream batch {learner.position - 1}")
        if self.steps_csv is not None and learner.rank == 0:
            append_step_rows(self.steps_csv, log.rows(values))
        metrics = log.metrics(values, learner)
        method.log_dict(metrics, on_step=True, on_epoch=False)
        progress = {"loss_last": metrics["loss_last_step"], "img_s": metrics["img_per_s"]}
        method.log_dict(progress, prog_bar=True, on_step=True, logger=False)
        return values.loss[-1]
