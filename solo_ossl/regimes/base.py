"""The regime interface: how a method is trained, as the hooks the method calls and the questions its driver asks.
This default trains offline; the others are one file each in this folder and an entry in ``REGIMES``
(``solo_ossl.regimes``)."""

from pathlib import Path

import torch
from lightning import LightningModule
from torch import nn


class Regime:
    """How a method is trained, as the hooks a method calls; this default trains offline, on augmented batches,
    with the method's own loss and Lightning's automatic optimization under a warm-up + cosine schedule. Regimes
    (``solo_ossl.regimes``) subclass it and are composed around any method by ``attach``."""

    name = "offline"
    # How the driver feeds it (solo_ossl.run): "epochs" over a task subset's images, or "stream" batches.
    driver = "epochs"
    # Lightning augments each batch after its transfer to the device; False where the regime augments inside its
    # own step (the online step draws fresh views for each of its N local steps).
    augments_batches = True
    # Manual optimization without a Lightning scheduler (the online step builds its own schedule per stream batch).
    manual_optimization = False
    # Image-views forwarded per trained view of an epochs regime (CaSSLe adds the frozen model's no-grad forward):
    # what the comparison runner counts as forward compute.
    forwards_per_trained_view = 1

    @classmethod
    def validate(cls, cfg, group_size: int) -> None:
        """Check the regime's own config section (the method scores units of ``group_size``)."""

    @classmethod
    def from_config(cls, cfg, dataset=None) -> "Regime":
        """The regime for a run (``dataset``: the training set, where an online memory of indices reads samples)."""
        return cls()

    def attach(self, method: LightningModule) -> None:
        method.regime = self
        method.automatic_optimization = not self.manual_optimization

    def training_step(self, method: LightningModule, batch, batch_idx: int) -> torch.Tensor:
        return method.offline_step(batch, batch_idx)

    def extra_losses(self, method: LightningModule, views: list[torch.Tensor], outputs: list[dict]) -> dict:
        """Loss terms added to the method's offline loss, by logged name."""
        return {}

    def trained_modules(self) -> list[nn.Module]:
        """Modules of the regime that the optimizer trains with the method's SSL weights."""
        return []

    def on_load_pretrained(self, method: LightningModule, state_dict: dict, path: str) -> None:
        pass

    def on_train_start(self, method: LightningModule) -> None:
        pass

    def on_train_batch_start(self, method: LightningModule) -> None:
        pass

    def on_train_end(self, method: LightningModule) -> None:
        pass

    def checkpoint_state(self) -> dict:
        """Extra top-level entries of a checkpoint."""
        return {}

    # ---- what a driver asks (solo_ossl.run) ---------------------------------------------------------------
    def open_run(self, run_dir: Path, rank: int, world: int, resuming: bool) -> None:
        """Before training: the regime's own logs go under ``run_dir`` (a run that starts over drops an earlier
        attempt's), and process ``rank`` of ``world`` takes its share of the regime's state."""

    def resume_from(self, checkpoint: dict) -> None:
        """Restore the regime's state from a checkpoint that ``checkpoint_state`` filled."""

    # A stream regime (``driver = "stream"``) also answers: ``position`` (stream batches done), ``unit`` (samples per
    # selection unit, in which a stream batch splits over processes), ``plan_stream(stream_batches)`` and
    # ``hold_out(images)`` (online.probe_heldout's set).

    def where(self, trainer) -> str:
        """Where training stands, for a message (e.g. a checkpoint saved on preemption)."""
        return f"after epoch {trainer.current_epoch}, step {trainer.global_step}"

    def finish_run(self, run_dir: Path, rank: int) -> None:
        """After training: the regime's own reports under ``run_dir``."""
