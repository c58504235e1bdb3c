"""The stream driver: the online regime's class-incremental stream (paper Sec. 4), one stream batch per Lightning
step, with checkpoints every ``online.checkpoint_every`` stream batches and at task ends, and the kNN monitor."""

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from solo_ossl.eval.monitor import KnnMonitor
from solo_ossl.online.selection import whole_groups
from solo_ossl.online.stream import batch_task_ends
from solo_ossl.run.common import heldout_images, write_run_files
from solo_ossl.run.streams import StreamSource, stream_batches, stream_source
from solo_ossl.utils.checkpoint import atomic_save
from solo_ossl.utils.distributed import set_ranks
from solo_ossl.utils.errors import SoloOsslError


def stream_position(module) -> int:
    """Stream batches done by a model whose regime streams."""
    return module.regime.position


class OnlineCheckpoint(Callback):
    """Saves ``last.ckpt`` every ``every`` stream batches and ``task<t>.ckpt`` when the stream finishes task t."""

    def __init__(self, directory: Path, every: int, task_ends: dict[int, int]) -> None:
        self.directory, self.every, self.task_ends = directory, every, task_ends

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        position = stream_position(pl_module)
        if position in self.task_ends:
            atomic_save(trainer, self.directory / f"task{self.task_ends[position]}.ckpt")
        if position % self.every == 0 or position in self.task_ends:
            atomic_save(trainer, self.directory / "last.ckpt")


class SkippedImages(Callback):
    """With ``data.on_bad_image=skip``: the stream's unreadable images, counted from each stream batch's requested
    and received samples, logged as ``skipped_images`` (cumulative) and printed at the end."""

    def __init__(self, source: StreamSource) -> None:
        self.source, self.skipped = source, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.skipped += self.source.requested(batch_idx) - len(batch[0])
        pl_module.log("skipped_images", float(self.skipped), on_step=True, on_epoch=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.skipped and trainer.is_global_zero:
            print(f"skipped {self.skipped} unreadable image(s) of the stream (their paths are in the warnings above)")


def train_stream(setup) -> L.Trainer:
    cfg, splits, model = setup.cfg, setup.splits, setup.model
    # The stream is split over the processes by the stream's own sampler, not Lightning's.
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=list(setup.callbacks),
        log_every_n_steps=1,
        limit_val_batches=0,
        use_distributed_sampler=False,
        **setup.trainer_args,
    )
    rank, world = set_ranks(trainer)
    write_run_files(cfg, setup.run_dir, setup.order, setup.task_classes, rank)
    regime = model.regime
    regime.open_run(setup.run_dir, rank, world, resuming=setup.checkpoint is not None)
    if cfg.online.probe_heldout:
        regime.hold_out(heldout_images(cfg, splits, setup.task_classes))
    source, loader, task_ends, batches_left = stream_loader(setup, rank, world)
    if batches_left == 0:
        print(f"the stream is already complete at batch {regime.position}; nothing to train")
    # The source's records of a stream batch are complete before a checkpoint saves them.
    callbacks = [
        *source.callbacks(setup.run_dir),
        OnlineCheckpoint(setup.checkpoint_dir, cfg.online.checkpoint_every, task_ends),
    ]
    if cfg.data.on_bad_image == "skip":
        callbacks.append(SkippedImages(source))
    evaluable = splits.labeled and len(splits.test) > 0
    if cfg.eval.every > 0 and not evaluable and rank == 0:
        print("note: the kNN monitor needs a labeled test split; it is off for this data")
    if cfg.eval.every > 0 and evaluable:
        dali = setup.dali
        transforms = (dali["eval_train"], dali["eval"]) if dali else (model.eval_transform,) * 2
        callbacks.insert(0, KnnMonitor(cfg.eval, splits.train, splits.test, transforms, task_ends, stream_position))
    trainer.callbacks[:0] = callbacks
    if batches_left != 0:
        trainer.fit(model, train_dataloaders=loader)
        regime.finish_run(setup.run_dir, rank)
    else:
        trainer.strategy.connect(model)
    return trainer


def stream_loader(setup, rank: int = 0, world: int = 1) -> tuple[StreamSource, DataLoader, dict[int, int], int | None]:
    """The stream's source, its loader (this process's part of every stream batch, from the resumed position on),
    the task ends as {stream batches done: task}, and the stream batches left (None: an open-ended stream)."""
    cfg, model = setup.cfg, setup.model
    online = cfg.online
    if online.skip_first_task and setup.splits.labeled and not (cfg.pretrained_ckpt or setup.checkpoint):
        print("warning: online.skip_first_task=true without pretrained_ckpt: streaming tasks 2.. from random weights")
    source = stream_source(setup, rank, world)
    regime = model.regime
    bs = online.stream_batch_size
    total = source.num_samples
    if total is not None:
        # The last stream batch must split into whole selection units per process; fewer than unit samples are cut.
        unit = world * regime.unit
        whole = whole_groups(total, unit)
        if whole < total and rank == 0:
            print(
                f"warning: the stream's last {total - whole} samples are dropped so that it splits into units of {unit}"
            )
        source.cut(whole)
        total = whole
    ends = batch_task_ends(source.task_ends, bs, total) if source.task_ends else {}
    if setup.checkpoint is not None:
        if "online" not in setup.checkpoint:
            raise SoloOsslError(f"{cfg.resume} is not an online checkpoint: resume it with its own (offline) config")
        regime.resume_from(setup.checkpoint)
        source.resume(setup.checkpoint)
        if rank == 0:
            print(f"resuming the stream at batch {regime.position} of {stream_batches(total, bs) or 'an open stream'}")
    if rank == 0:
        meta = {"tasks": source.tasks, "num_samples": total, "batch_size": bs, "task_end_batches": ends}
        (setup.run_dir / "stream.json").write_text(json.dumps({**meta, "processes": world}))
    planned = stream_batches(total, bs)
    stop = planned
    if online.max_stream_batches > 0:
        stop = online.max_stream_batches if stop is None else min(stop, online.max_stream_batches)
    if planned is None and model.momentum_pairs and online.max_stream_batches == 0:
        raise SoloOsslError(
            f"{cfg.method.name}'s momentum target anneals over the stream, and an open-ended stream has no length: set "
            "++online.max_stream_batches to the stream batches it plans for"
        )
    regime.plan_stream(planned or online.max_stream_batches)
    loader = source.loader(bs, regime.position, stop)
    return source, loader, ends, None if stop is None else max(0, stop - regime.position)
