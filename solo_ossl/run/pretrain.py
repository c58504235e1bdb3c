"""Self-supervised pretraining as the config's regime asks: what ``main_pretrain.py`` runs. The regime's driver
(``epochs``: ``solo_ossl.run.offline``; ``stream``: ``solo_ossl.run.online``) trains the model built here."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from solo_ossl.data import build_datasets
from solo_ossl.data.dali import use_dali
from solo_ossl.methods import METHODS, BaseMethod
from solo_ossl.model import build_model
from solo_ossl.regimes import REGIMES
from solo_ossl.run.common import class_split, run_dir_of, trainer_common
from solo_ossl.run.offline import train_epochs
from solo_ossl.run.online import train_stream
from solo_ossl.run.validate import validate_pretrain
from solo_ossl.utils.checkpoint import atomic_save, read_checkpoint
from solo_ossl.utils.device import configure_device_defaults, describe_run_device, training_device
from solo_ossl.utils.distributed import sync_batchnorm
from solo_ossl.utils.errors import Preempted, SoloOsslError
from solo_ossl.utils.logs import quiet_lightning


@dataclass
class PretrainSetup:
    """What a driver trains and where: the config, the data (DALI transforms where they are used), the class
    order and its tasks, the model with its regime, the checkpoint to resume from, the run folder, the Trainer's
    common arguments and the caller's callbacks."""

    cfg: DictConfig
    splits: object
    dali: dict | None
    order: list[int]
    task_classes: list[list[int]]
    model: BaseMethod
    checkpoint: dict | None
    run_dir: Path
    trainer_args: dict
    callbacks: list[Callback]

    @property
    def checkpoint_dir(self) -> Path:
        path = self.run_dir / "checkpoints"
        path.mkdir(exist_ok=True)
        return path


DRIVERS = {"epochs": train_epochs, "stream": train_stream}
# Keys that may differ between an interrupted run and the command that continues it.
RESUME_KEYS = ("resume", "auto_resume", "progress_bar")


class SaveOnPreemption(Callback):
    """On SIGTERM (Lightning's signal connector sets ``received_sigterm``), save ``last.ckpt`` at the end of the
    optimizer step or stream batch in progress; Lightning then stops the run (``SIGTERMException``)."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.path, self.where = checkpoint_dir / "last.ckpt", ""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.received_sigterm and not self.where:
            atomic_save(trainer, self.path)
            self.where = pl_module.regime.where(trainer)


def comparable(cfg) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    # The method's own keys: a run saved when every method's keys were in one section continues.
    keys = {f.name for f in dataclasses.fields(METHODS[cfg.method.name].Config)}
    config["method"] = {k: v for k, v in config["method"].items() if k in keys}
    # What sync_batchnorm does, not how it was written: a run saved with false (the default before null) continues
    # under null wherever both mean per-process BatchNorm (one process, or CPU processes).
    config["sync_batchnorm"] = sync_batchnorm(cfg, cfg.devices * cfg.num_nodes)
    return {k: v for k, v in config.items() if k not in RESUME_KEYS}


def auto_resume(cfg: DictConfig, run_dir: Path) -> Path | None:
    """For a command run again: the final checkpoint of a run that finished (nothing to train), or, for an
    interrupted one, ``cfg.resume`` set to its ``last.ckpt``. A folder holding a run of another config stops with an
    error rather than mixing two runs."""
    final, last, saved = run_dir / "final.ckpt", run_dir / "checkpoints" / "last.ckpt", run_dir / "config.yaml"
    if cfg.resume or not cfg.auto_resume or not (final.exists() or last.exists()) or not saved.exists():
        return None
    # The saved config on the current schema: a key added to the schema since takes its default, as it does now.
    schema = OmegaConf.structured(OmegaConf.get_type(cfg))
    try:
        before = comparable(OmegaConf.merge(schema, OmegaConf.load(saved)))
    except OmegaConfBaseException as e:
        raise SoloOsslError(
            f"{run_dir} holds a run whose config this version cannot read ({str(e).splitlines()[0]}): give this run "
            "another ++name, or ++auto_resume=false to train it again from scratch in that folder"
        ) from e
    now = comparable(cfg)
    differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if differ:
        raise SoloOsslError(
            f"{run_dir} holds a run of another config (differs in {', '.join(differ)}): give this run another "
            "++name, or ++auto_resume=false to train it again from scratch in that folder"
        )
    if final.exists():
        print(f"finished before: {final} (++auto_resume=false trains it again)")
        return final
    cfg.resume = str(last)
    print(f"resuming the interrupted run from {last} (++auto_resume=false starts over)")
    return None


def run_pretrain(cfg: DictConfig, extra_callbacks: list[Callback] = ()) -> Path:
    """Train as ``cfg`` says and return the path of the final checkpoint."""
    validate_pretrain(cfg)
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    configure_device_defaults(training_device(cfg.accelerator), cfg.deterministic)
    if rank_zero_only.rank == 0:
        print(describe_run_device(cfg.precision, cfg.accelerator))
    splits, dali = use_dali(cfg.data, build_datasets(cfg.data, cfg.seed), cfg.seed, cfg.accelerator)
    order, task_classes = class_split(cfg, splits)
    run_dir = run_dir_of(cfg)
    finished = auto_resume(cfg, run_dir)
    if finished is not None:
        return finished
    model = build_model(cfg, splits.num_classes, splits.mean, splits.std, splits.train)
    if dali is not None:
        model.augment, model.eval_transform = dali["views"], dali["eval"]
    checkpoint = read_checkpoint(cfg.resume) if cfg.resume else None
    if checkpoint is not None:
        model.check_same_method(checkpoint, cfg.resume)
    elif cfg.pretrained_ckpt:
        model.load_pretrained(cfg.pretrained_ckpt)
    driver = REGIMES[cfg.regime].driver
    setup = PretrainSetup(
        cfg,
        splits,
        dali,
        order,
        task_classes,
        model,
        checkpoint,
        run_dir,
        trainer_common(cfg, run_dir, online=driver == "stream"),
        list(extra_callbacks),
    )
    preemption = SaveOnPreemption(setup.checkpoint_dir)
    setup.callbacks.append(preemption)
    try:
        trainer = DRIVERS[driver](setup)
    except SIGTERMException as e:
        raise Preempted(
            f"SIGTERM received: the run saved {preemption.path} {preemption.where or 'before training'}; run the "
            "same command again to continue from it"
        ) from e
    final = run_dir / "final.ckpt"
    atomic_save(trainer, final)
    return final
