"""Offline (task subset or joint) and online self-supervised pretraining: what ``main_pretrain.py`` runs."""

import json
import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Subset

from solo_ossl.args.validate import validate_pretrain
from solo_ossl.data import build_datasets, class_order, split_tasks, task_sample_indices
from solo_ossl.data.dali import use_dali
from solo_ossl.data.datasets import loader_workers
from solo_ossl.eval.monitor import KnnMonitor
from solo_ossl.eval.plots import plot_online_curves
from solo_ossl.online.stream import StreamBatchSampler, stream_order
from solo_ossl.regimes import build_model
from solo_ossl.utils.checkpoint import atomic_save, read_checkpoint
from solo_ossl.utils.device import configure_device_defaults, resolve_precision, trainer_precision, training_device
from solo_ossl.utils.distributed import set_ranks, trainer_distribution
from solo_ossl.utils.errors import SoloOsslError
from solo_ossl.utils.logs import quiet_lightning


class OnlineCheckpoint(Callback):
    """Saves ``last.ckpt`` every ``every`` stream batches and ``task<t>.ckpt`` when the stream finishes task t."""

    def __init__(self, directory: Path, every: int, task_ends: dict[int, int]) -> None:
        self.directory, self.every, self.task_ends = directory, every, task_ends

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        position = pl_module.regime.position
        if position in self.task_ends:
            atomic_save(trainer, self.directory / f"task{self.task_ends[position]}.ckpt")
        if position % self.every == 0 or position in self.task_ends:
            atomic_save(trainer, self.directory / "last.ckpt")


def _run_dir(cfg: DictConfig) -> Path:
    run_dir = Path(cfg.output_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """metrics.csv always; TensorBoard or Weights & Biases beside it (``logger``)."""
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs")]
    if cfg.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, name="tensorboard"))
    elif cfg.logger == "wandb":
        try:
            import wandb  # noqa: F401
        except ImportError as e:
            raise SoloOsslError(
                "++logger=wandb needs the wandb package: pip install wandb (or ++logger=tensorboard)"
            ) from e
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(name=cfg.name, save_dir=str(run_dir), project="solo-ossl"))
    return loggers


def run_pretrain(cfg: DictConfig, extra_callbacks: list[Callback] = ()) -> Path:
    """Train as ``cfg`` says and return the path of the final checkpoint."""
    validate_pretrain(cfg)
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    configure_device_defaults(training_device(cfg.accelerator))
    splits, dali = use_dali(cfg.data, build_datasets(cfg.data, cfg.seed), cfg.seed, cfg.accelerator)
    order, task_classes = [], []  # an unlabeled folder has no classes, hence no tasks
    if splits.labeled:
        order = class_order(splits.num_classes, cfg.data.class_order_seed, cfg.data.class_order)
        task_classes = split_tasks(order, cfg.data.num_tasks)
    run_dir = _run_dir(cfg)
    model = build_model(cfg, splits.num_classes, splits.mean, splits.std, splits.train, run_dir / "online_steps.csv")
    if dali is not None:
        model.augment, model.eval_transform = dali["views"], dali["eval"]
    checkpoint = read_checkpoint(cfg.resume) if cfg.resume else None
    if checkpoint is not None:
        model.check_same_method(checkpoint, cfg.resume)
    elif cfg.pretrained_ckpt:
        model.load_pretrained(cfg.pretrained_ckpt)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    common = dict(
        accelerator=cfg.accelerator,
        **trainer_distribution(cfg, online=cfg.online.enabled),
        **trainer_precision(resolve_precision(cfg.precision, cfg.accelerator), cfg.accelerator),
        logger=build_loggers(cfg, run_dir),
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    if cfg.online.enabled:
        # The stream is split over the processes by the stream's own sampler, not Lightning's.
        trainer = L.Trainer(
            max_epochs=1,
            callbacks=list(extra_callbacks),
            log_every_n_steps=1,
            limit_val_batches=0,
            use_distributed_sampler=False,
            **common,
        )
        rank, world = set_ranks(trainer)
        _write_run_files(cfg, run_dir, order, task_classes, rank)
        model.regime.shard(rank, world)
        loader, task_ends = _online_setup(cfg, model, splits.train, task_classes, run_dir, checkpoint, rank, world)
        if len(loader) == 0:
            print(f"the stream is already complete at batch {model.regime.position}; nothing to train")
        callbacks = [OnlineCheckpoint(ckpt_dir, cfg.online.checkpoint_every, task_ends)]
        if cfg.eval.every > 0 and not splits.labeled and rank == 0:
            print("note: the kNN monitor needs labels; it is off for an unlabeled folder")
        if cfg.eval.every > 0 and splits.labeled:
            transforms = (dali["eval_train"], dali["eval"]) if dali else (model.eval_transform,) * 2
            callbacks.insert(0, KnnMonitor(cfg.eval, splits.train, splits.test, transforms, task_ends))
        trainer.callbacks[:0] = callbacks
        if len(loader):
            trainer.fit(model, train_dataloaders=loader)
            if trainer.is_global_zero:
                plot_online_curves(run_dir)
        else:
            trainer.strategy.connect(model)
    else:
        tasks = list(cfg.data.tasks) if cfg.data.tasks else list(range(1, cfg.data.num_tasks + 1))
        if splits.labeled:
            indices = torch.cat(task_sample_indices(splits.train.targets, task_classes, tasks))
        else:
            indices = torch.arange(len(splits.train))
        train = Subset(splits.train, indices.tolist())
        loader = DataLoader(
            train,
            batch_size=cfg.optimizer.batch_size,
            shuffle=True,
            drop_last=len(train) >= cfg.optimizer.batch_size,
            num_workers=loader_workers(splits.train, cfg.data.num_workers),
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        val_loader = DataLoader(
            splits.test, batch_size=256, num_workers=loader_workers(splits.test, cfg.data.num_workers)
        )
        every = max(1, cfg.checkpoint_every_epochs)
        saver = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_epochs=every, save_top_k=0)
        trainer = L.Trainer(
            max_epochs=cfg.max_epochs,
            callbacks=[saver, *extra_callbacks],
            log_every_n_steps=min(cfg.log_every_n_steps, max(1, len(loader))),
            check_val_every_n_epoch=max(1, cfg.val_every_n_epochs),
            **common,
        )
        _write_run_files(cfg, run_dir, order, task_classes, set_ranks(trainer)[0])
        trainer.fit(model, loader, val_loader if cfg.val_every_n_epochs > 0 else None, ckpt_path=cfg.resume or None)
    final = run_dir / "final.ckpt"
    atomic_save(trainer, final)
    return final


def _write_run_files(cfg: DictConfig, run_dir: Path, order: list[int], task_classes: list[list[int]], rank: int):
    if rank == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml")
        (run_dir / "class_order.json").write_text(json.dumps({"class_order": order, "tasks": task_classes}))


def _online_setup(
    cfg, model, train_set, task_classes, run_dir: Path, checkpoint: dict | None, rank: int = 0, world: int = 1
):
    online = cfg.online
    first = 2 if online.skip_first_task else 1
    tasks = [t for t in range(first, cfg.data.num_tasks + 1)]
    if online.skip_first_task and not (cfg.pretrained_ckpt or checkpoint):
        print("warning: online.skip_first_task=true without pretrained_ckpt: streaming tasks 2.. from random weights")
    order = stream_order(train_set.targets, task_classes, tasks, cfg.seed, online.stream.order)
    learner = model.regime
    # The last stream batch must split into whole selection groups per process; fewer than unit samples are cut.
    unit = world * (model.group_size if online.selection != "none" else 1)
    if len(order) % unit:
        cut = len(order) % unit
        if rank == 0:
            print(f"warning: the stream's last {cut} samples are dropped so that it splits into units of {unit}")
        order = order[:-cut]
    bs = online.stream_batch_size
    ends, total = {}, 0
    if online.stream.order == "class_incremental":  # other orders mix the tasks: no task ends or checkpoints
        for task, indices in zip(tasks, task_sample_indices(train_set.targets, task_classes, tasks), strict=True):
            total += len(indices)
            ends[min(math.ceil(total / bs), math.ceil(len(order) / bs))] = task
    if checkpoint is not None:
        if "online" not in checkpoint:
            raise SoloOsslError(f"{cfg.resume} is not an online checkpoint: resume offline runs without online.enabled")
        learner.resume_from(checkpoint)
        learner.truncate_steps_csv()
        if rank == 0:
            print(f"resuming the stream at batch {learner.position} of {math.ceil(len(order) / bs)}")
    elif learner.steps_csv.exists() and rank == 0:
        learner.steps_csv.unlink()
    if rank == 0:
        (run_dir / "stream.json").write_text(
            json.dumps(
                {
                    "tasks": tasks,
                    "num_samples": len(order),
                    "batch_size": bs,
                    "task_end_batches": ends,
                    "processes": world,
                }
            )
        )
    sampler = StreamBatchSampler(order, bs, start=learner.position, rank=rank, world=world)
    if online.max_stream_batches > 0:
        sampler.batches = sampler.batches[: online.max_stream_batches]
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=loader_workers(train_set, cfg.data.num_workers))
    return loader, ends
