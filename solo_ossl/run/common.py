"""What every training driver shares: the run folder and its files, loggers, and the Trainer's hardware arguments."""

import json
from pathlib import Path

import torch
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

from solo_ossl.data import class_order, split_tasks
from solo_ossl.online.stream import stream_segments
from solo_ossl.utils.device import resolve_precision, trainer_precision
from solo_ossl.utils.distributed import trainer_distribution
from solo_ossl.utils.errors import SoloOsslError


def run_dir_of(cfg: DictConfig) -> Path:
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


def trainer_common(cfg: DictConfig, run_dir: Path, online: bool) -> dict:
    """The ``L.Trainer`` arguments every pretraining driver passes: devices and strategy, precision, loggers."""
    return dict(
        accelerator=cfg.accelerator,
        **trainer_distribution(cfg, online=online),
        **trainer_precision(resolve_precision(cfg.precision, cfg.accelerator), cfg.accelerator),
        logger=build_loggers(cfg, run_dir),
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def class_split(cfg: DictConfig, splits) -> tuple[list[int], list[list[int]]]:
    """The class order and each task's classes (CaSSLe's split, ``data.class_order_seed``/``class_order`` and
    ``data.num_tasks``); none for data without labels (an unlabeled folder has no classes, hence no tasks)."""
    if not splits.labeled:
        return [], []
    order = class_order(splits.num_classes, cfg.data.class_order_seed, cfg.data.class_order)
    return order, split_tasks(order, cfg.data.num_tasks)


def write_run_files(cfg: DictConfig, run_dir: Path, order: list[int], task_classes: list[list[int]], rank: int):
    if rank == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml")
        (run_dir / "class_order.json").write_text(json.dumps({"class_order": order, "tasks": task_classes}))


def heldout_images(cfg: DictConfig, splits, task_classes: list[list[int]]) -> torch.Tensor:
    """``online.probe_heldout``'s set: the first that many test images of the first streamed task's classes, as
    uint8 images (the loss of memory-like samples that are never trained on, issue 46)."""
    count, online = cfg.online.probe_heldout, cfg.online
    if cfg.data.loader == "dali" or not splits.labeled:
        raise SoloOsslError(
            "online.probe_heldout needs a labeled test split and the torch loader (it draws fixed views with the "
            "batched augmentation): set online.probe_heldout=0 here"
        )
    classes = torch.tensor(task_classes[1 if online.skip_first_task else 0])
    indices = torch.isin(splits.test.targets, classes).nonzero().flatten()
    if len(indices) < count:
        raise SoloOsslError(
            f"online.probe_heldout={count} but the test split has {len(indices)} images of the first streamed "
            f"task's classes: lower online.probe_heldout to at most {len(indices)}"
        )
    return splits.test.load(indices[:count])


def last_task(cfg: DictConfig) -> int:
    """The last task of the sequence (``data.last_task``, 0: all ``data.num_tasks``)."""
    return cfg.data.last_task or cfg.data.num_tasks


def configured_stream(
    cfg: DictConfig, targets: torch.Tensor, task_classes: list[list[int]]
) -> tuple[list[int], list[torch.Tensor]]:
    """The tasks a run streams (from 2 with ``online.skip_first_task``, to ``last_task``) and its stream's segments in
    ``online.stream``'s order and boundaries: what every online driver streams."""
    online = cfg.online
    tasks = list(range(2 if online.skip_first_task else 1, last_task(cfg) + 1))
    stream = online.stream
    segments = stream_segments(
        targets, task_classes, tasks, cfg.seed, stream.order, stream.blurry, str(stream.blurry_mode)
    )
    return tasks, segments
