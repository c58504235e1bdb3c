"""The stream driver: the online regime's class-incremental stream (paper Sec. 4), one stream batch per Lightning
step, with checkpoints every ``online.checkpoint_every`` stream batches and at task ends, and the kNN monitor."""

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from solo_ossl.data import task_sample_indices
from solo_ossl.data.datasets import collate_readable, loader_workers
from solo_ossl.eval.monitor import KnnMonitor
from solo_ossl.online.selection import whole_groups
from solo_ossl.online.stream import StreamBatchSampler, stream_order
from solo_ossl.run.common import heldout_images, last_task, write_run_files
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

    def __init__(self, sampler: StreamBatchSampler) -> None:
        self.sampler, self.skipped = sampler, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        requested = len(self.sampler.batches[self.sampler.start + batch_idx])
        self.skipped += requested - len(batch[0])
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
    loader, task_ends = stream_loader(setup, rank, world)
    if len(loader) == 0:
        print(f"the stream is already complete at batch {regime.position}; nothing to train")
    callbacks = [OnlineCheckpoint(setup.checkpoint_dir, cfg.online.checkpoint_every, task_ends)]
    if cfg.data.on_bad_image == "skip":
        callbacks.append(SkippedImages(loader.batch_sampler))
    if cfg.eval.every > 0 and not splits.labeled and rank == 0:
        print("note: the kNN monitor needs labels; it is off for an unlabeled folder")
    if cfg.eval.every > 0 and splits.labeled:
        dali = setup.dali
        transforms = (dali["eval_train"], dali["eval"]) if dali else (model.eval_transform,) * 2
        callbacks.insert(0, KnnMonitor(cfg.eval, splits.train, splits.test, transforms, task_ends, stream_position))
    trainer.callbacks[:0] = callbacks
    if len(loader):
        trainer.fit(model, train_dataloaders=loader)
        regime.finish_run(setup.run_dir, rank)
    else:
        trainer.strategy.connect(model)
    return trainer


def stream_loader(setup, rank: int = 0, world: int = 1) -> tuple[DataLoader, dict[int, int]]:
    """The stream's loader (this process's part of every stream batch, from the resumed position on) and the task
    ends, as {stream batches done: task}."""
    cfg, model, train_set = setup.cfg, setup.model, setup.splits.train
    online = cfg.online
    first = 2 if online.skip_first_task else 1
    tasks = list(range(first, last_task(cfg) + 1))
    if online.skip_first_task and not (cfg.pretrained_ckpt or setup.checkpoint):
        print("warning: online.skip_first_task=true without pretrained_ckpt: streaming tasks 2.. from random weights")
    order = stream_order(train_set.targets, setup.task_classes, tasks, cfg.seed, online.stream.order)
    regime = model.regime
    # The last stream batch must split into whole selection units per process; fewer than unit samples are cut.
    unit = world * regime.unit
    whole = whole_groups(len(order), unit)
    if whole < len(order):
        if rank == 0:
            print(
                f"warning: the stream's last {len(order) - whole} samples are dropped so that it splits into units of {unit}"
            )
        order = order[:whole]
    bs = online.stream_batch_size
    ends, total = {}, 0
    if online.stream.order == "class_incremental":  # other orders mix the tasks: no task ends or checkpoints
        for task, indices in zip(tasks, task_sample_indices(train_set.targets, setup.task_classes, tasks), strict=True):
            total += len(indices)
            ends[min(math.ceil(total / bs), math.ceil(len(order) / bs))] = task
    if setup.checkpoint is not None:
        if "online" not in setup.checkpoint:
            raise SoloOsslError(f"{cfg.resume} is not an online checkpoint: resume it with its own (offline) config")
        regime.resume_from(setup.checkpoint)
        if rank == 0:
            print(f"resuming the stream at batch {regime.position} of {math.ceil(len(order) / bs)}")
    if rank == 0:
        meta = {"tasks": tasks, "num_samples": len(order), "batch_size": bs, "task_end_batches": ends}
        (setup.run_dir / "stream.json").write_text(json.dumps({**meta, "processes": world}))
    sampler = StreamBatchSampler(order, bs, start=regime.position, rank=rank, world=world)
    regime.plan_stream(len(sampler.batches))
    if online.max_stream_batches > 0:
        sampler.batches = sampler.batches[: online.max_stream_batches]
    workers = loader_workers(train_set, cfg.data.num_workers)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=workers, collate_fn=collate_readable)
    return loader, ends
