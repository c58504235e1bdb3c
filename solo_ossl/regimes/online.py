"""The online regime (paper Sec. 4): one Lightning training step is one stream batch, trained on for N local
optimizer steps (``solo_ossl.online.algorithm``) with manual optimization; this file is its Lightning side (the
optimizer Lightning built, ``manual_backward``, logging, Lightning's checkpoint layout) and what the stream driver
asks of it."""

import functools
from pathlib import Path

import torch

from solo_ossl.eval.plots import plot_online_curves
from solo_ossl.online.algorithm import train_stream_batch
from solo_ossl.online.candidates import CandidateLog
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.settings import validate_online
from solo_ossl.online.steplog import append_step_rows, truncate_step_rows
from solo_ossl.regimes.base import Regime
from solo_ossl.utils.distributed import check_replicas


class OnlineRegime(Regime):
    """Memory, SLCLRS and a selection rule around any method (``learner``: their state). Its run folder receives
    ``online_steps.csv`` (a row per local step) and, with ``online.log_candidates``, ``online_candidates.npz``."""

    name = "online"
    driver = "stream"
    augments_batches = False
    manual_optimization = True

    def __init__(self, online_cfg, dataset=None, classifier_lr: float = 0.1) -> None:
        self.learner = OnlineLearner(online_cfg, dataset=dataset, classifier_lr=classifier_lr)
        self.steps_csv: Path | None = None
        self.candidates: CandidateLog | None = None
        self.method = None
        self.pending_optimizer_state: dict | None = None
        self.pending_precision_state: dict = {}

    @classmethod
    def validate(cls, cfg, group_size: int) -> None:
        validate_online(cfg.online, group_size)

    @classmethod
    def from_config(cls, cfg, dataset=None) -> "OnlineRegime":
        return cls(cfg.online, dataset, cfg.optimizer.classifier_lr)

    def attach(self, method) -> None:
        super().attach(method)
        self.method = method
        self.learner.group_size = method.group_size

    # ---- what the stream driver asks ----------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Stream batches done."""
        return self.learner.position

    @property
    def unit(self) -> int:
        """Samples per selection unit: a stream batch's share of every process comes in whole units."""
        return self.learner.unit

    def plan_stream(self, stream_batches: int) -> None:
        """The stream's length in stream batches (the momentum targets' tau schedule spans it)."""
        self.learner.total_stream_batches = stream_batches

    def hold_out(self, images: torch.Tensor) -> None:
        """``online.probe_heldout``'s set (uint8 images): its loss is logged after every local step."""
        self.learner.heldout_images = images

    def open_run(self, run_dir: Path, rank: int, world: int, resuming: bool) -> None:
        self.steps_csv = run_dir / "online_steps.csv"
        if self.learner.cfg.log_candidates:
            self.candidates = CandidateLog(run_dir / "online_candidates.npz")
        self.learner.shard(rank, world)
        if not resuming and rank == 0 and self.steps_csv.exists():  # an earlier attempt's rows
            self.steps_csv.unlink()

    def where(self, trainer) -> str:
        return f"after stream batch {self.position}"

    def finish_run(self, run_dir: Path, rank: int) -> None:
        if rank == 0 and self.steps_csv is not None and self.steps_csv.exists():
            plot_online_curves(run_dir)

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {"online": self.learner.sharded_state(self.method.device)}

    def resume_from(self, checkpoint: dict) -> None:
        """The model, the learner's shard and, once Lightning has built them (``on_train_start``), the optimizer's
        and the precision plugin's states, from Lightning's checkpoint layout."""
        self.method.load_state_dict(checkpoint["state_dict"])
        self.learner.load_sharded_state(checkpoint["online"])
        self.pending_optimizer_state = checkpoint["optimizer_states"][0]
        # Lightning saves its precision plugin's state (fp16's GradScaler) under the plugin's class name.
        self.pending_precision_state = {k: v for k, v in checkpoint.items() if k.endswith("Precision")}
        if self.steps_csv is not None and self.learner.rank == 0:
            truncate_step_rows(self.steps_csv, self.learner.position)

    def on_train_start(self, method) -> None:
        rule = self.learner.selection
        if self.candidates is not None and rule is not None:
            rule.require_scores()  # the log records every step's scores, also of a rule that chooses without them
        if self.pending_optimizer_state is not None:
            method.optimizers().optimizer.load_state_dict(self.pending_optimizer_state)
            self.pending_optimizer_state = None
        plugin = method.trainer.precision_plugin
        state = self.pending_precision_state.pop(type(plugin).__qualname__, None)
        if state:
            plugin.load_state_dict(state)
        self.pending_precision_state = {}

    def on_train_batch_start(self, method) -> None:
        # A resumed run's random states, restored right before its first step (after Lightning's start-up and the
        # loader's iterator have drawn whatever they draw).
        self.learner.restore_pending_rng(method.device)

    def on_train_end(self, method) -> None:
        if self.candidates is not None and self.learner.rank == 0:
            self.candidates.write()

    # ---- one stream batch ----------------------------------------------------------------------------------
    def training_step(self, method, batch, batch_idx: int) -> torch.Tensor:
        learner = self.learner
        on_step = functools.partial(self.candidates, learner.position, method) if self.candidates else None
        log, values = train_stream_batch(learner, method, method.optimizers(), batch, method.manual_backward, on_step)
        if learner.world > 1 and learner.cfg.check_replicas:
            check_replicas(method, f"stream batch {learner.position - 1}")
        if self.steps_csv is not None and learner.rank == 0:
            append_step_rows(self.steps_csv, log.rows(values))
        metrics = log.metrics(values, learner)
        method.log_dict(metrics, on_step=True, on_epoch=False)
        progress = {"loss_last": metrics["loss_last_step"], "img_s": metrics["img_per_s"]}
        method.log_dict(progress, prog_bar=True, on_step=True, logger=False)
        return values.loss[-1]
