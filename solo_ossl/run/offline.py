"""The epochs driver: offline training over a subset of tasks (the offline regime, and one CaSSLe task)."""

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, Subset

from solo_ossl.data import task_sample_indices
from solo_ossl.data.datasets import collate_readable, loader_workers
from solo_ossl.run.common import last_task, write_run_files
from solo_ossl.utils.checkpoint import checkpoint_globals
from solo_ossl.utils.device import capture_rng_states, restore_rng_states
from solo_ossl.utils.distributed import set_ranks


class ResumableRandomness(Callback):
    """The random states an offline run continues from: the global ones (torch, NumPy, Python: the augmentations
    draw from them) and the loader's shuffle generator, saved with every checkpoint and restored when the run
    resumes, so that a resumed run trains as the uninterrupted one (bitwise on the CPU)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        self.device = torch.device("cpu")
        self.pending: dict | None = None

    def state_dict(self) -> dict:
        return {"rng": capture_rng_states(self.device), "loader": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        # The loader's state now, before Lightning creates the resumed epoch's iterator (which draws from it); the
        # global states once training starts, after Lightning's own start-up.
        self.generator.set_state(state_dict["loader"])
        self.pending = state_dict["rng"]

    def on_train_start(self, trainer, pl_module) -> None:
        self.device = pl_module.device
        if self.pending is not None:
            restore_rng_states(self.pending, self.device)
            self.pending = None


def train_epochs(setup) -> L.Trainer:
    cfg, splits = setup.cfg, setup.splits
    tasks = list(cfg.data.tasks) if cfg.data.tasks else list(range(1, last_task(cfg) + 1))
    if splits.labeled:
        indices = torch.cat(task_sample_indices(splits.train.targets, setup.task_classes, tasks))
    else:
        indices = torch.arange(len(splits.train))
    train = Subset(splits.train, indices.tolist())
    generator = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        train,
        batch_size=cfg.optimizer.batch_size,
        shuffle=True,
        drop_last=len(train) >= cfg.optimizer.batch_size,
        num_workers=loader_workers(splits.train, cfg.data.num_workers),
        generator=generator,
        collate_fn=collate_readable,
    )
    val_loader = DataLoader(
        splits.test,
        batch_size=256,
        num_workers=loader_workers(splits.test, cfg.data.num_workers),
        collate_fn=collate_readable,
    )
    every = max(1, cfg.checkpoint_every_epochs)
    saver = ModelCheckpoint(dirpath=setup.checkpoint_dir, save_last=True, every_n_epochs=every, save_top_k=0)
    trainer = L.Trainer(
        max_epochs=cfg.max_epochs,
        callbacks=[saver, ResumableRandomness(generator), *setup.callbacks],
        log_every_n_steps=min(cfg.log_every_n_steps, max(1, len(loader))),
        check_val_every_n_epoch=max(1, cfg.val_every_n_epochs),
        **setup.trainer_args,
    )
    write_run_files(cfg, setup.run_dir, setup.order, setup.task_classes, set_ranks(trainer)[0])
    validation = val_loader if cfg.val_every_n_epochs > 0 else None
    # Lightning reads the resumed file again: weights only, with our checkpoints' numpy RNG state allowed.
    with checkpoint_globals():
        trainer.fit(setup.model, loader, validation, ckpt_path=cfg.resume or None, weights_only=True)
    return trainer
