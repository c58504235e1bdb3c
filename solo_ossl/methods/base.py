"""The method contract and what every self-supervised method shares: backbone, projector, the online linear
classifier on detached features, optimizers, the offline training step and checkpoints.

A method (one file, registered in ``solo_ossl.methods.METHODS``) defines:
- ``forward(x)``: what its losses need for one view (``feats``, ``z``, and e.g. ``p`` for a predictor or
  ``momentum_z`` for a momentum target; ``momentum=False`` skips the momentum target where it is not needed);
- ``ssl_loss(out1, out2)`` over a batch and ``unit_losses(out1, out2)`` per scoring unit (what RALS scores), both
  from two views' outputs, and ``distill_loss`` (CaSSLe's);
- ``learnable_params`` (solo-learn's name): the modules the optimizer trains;
- ``momentum_pairs``: (online, target) modules, updated by an EMA after every optimizer step with solo-learn's cosine
  tau schedule (``after_optimizer_step``);
- ``scored_modules``: every module its unit losses read, momentum targets included, which RALS's anchor copies;
  ``frozen_modules``: what CaSSLe's previous-task copy holds.
A training regime (``solo_ossl.regimes``, composed around any method) is reached only through its hooks.
"""

import dataclasses

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from timm.optim import Lars
from torch import nn

from solo_ossl.args.schema import MethodConfig
from solo_ossl.backbones import build_backbone
from solo_ossl.data.augment import EvalTransform, MultiViewAugment
from solo_ossl.modules.momentum import cosine_tau, ema_update
from solo_ossl.modules.static_lr import keep_static_lrs
from solo_ossl.regimes.base import Regime
from solo_ossl.utils.checkpoint import (
    backbone_state,
    fits,
    is_peer_checkpoint,
    load_into,
    read_checkpoint,
    submodule_state,
)
from solo_ossl.utils.distributed import gather_outputs, gather_with_grad, own_rows
from solo_ossl.utils.errors import SoloOsslError, check_finite


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float,
    max_warmup_share: float,
    warmup_start_factor: float,
    min_lr: float,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step linear warm-up, then cosine decay to ``min_lr`` at ``total_steps``.

    The warm-up lasts CaSSLe's ``warmup_epochs`` (10, for its 400-500 epoch runs), capped at ``max_warmup_share`` of
    the run, so that short runs (10 or 20 epochs per task) warm up briefly and still end annealed.
    """
    epochs = total_steps / steps_per_epoch
    warmup = min(total_steps - 1, int(min(warmup_epochs, max_warmup_share * epochs) * steps_per_epoch))
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=min_lr)
    if warmup <= 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, warmup_start_factor, 1.0, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


class BaseMethod(L.LightningModule):
    name: str = ""  # its key in solo_ossl.methods.METHODS and in configs (method.name)
    Config: type[MethodConfig] = MethodConfig  # its keys with their defaults: the common ones and its own
    default_group_size: int = 1
    predictor_keys: dict = {}  # the predictor's own optimizer keys (solo-learn's: lr, weight_decay, static_lr)
    scored_modules: tuple[str, ...] = ("backbone", "projector")
    frozen_modules: tuple[str, ...] = ("backbone", "projector")

    def __init__(self, cfg: DictConfig, num_classes: int, mean, std) -> None:
        super().__init__()
        self.complete_config(cfg)
        self.cfg = cfg
        self.num_classes = num_classes
        self.backbone = build_backbone(cfg.backbone, cfg.data.crop_size)
        self.features_dim = self.backbone.num_features
        self.projector = self.build_projector(self.features_dim, cfg.method)
        self.classifier = nn.Linear(self.features_dim, num_classes)
        self.group_size = self.scoring_group_size(cfg.method)
        self.augment = MultiViewAugment(cfg.data.augmentations, cfg.data.crop_size, mean, std)
        self.eval_transform = EvalTransform(cfg.data.crop_size, mean, std)
        self.val_acc1 = torchmetrics.Accuracy("multiclass", num_classes=max(2, num_classes))  # torchmetrics needs 2
        if cfg.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        Regime().attach(self)  # offline; solo_ossl.regimes composes another regime around the method
        self.predictor = self.build_predictor(cfg.method)

    @classmethod
    def complete_config(cls, cfg: DictConfig) -> None:
        """``cfg.method`` becomes this method's keys (``checked_config``), its defaults filled in."""
        cfg.method = OmegaConf.to_container(cls.checked_config(cfg.method))

    @classmethod
    def checked_config(cls, method_cfg) -> DictConfig:
        """The ``method`` section on this method's keys (``Config``), its defaults filled in, as solo-learn's
        ``add_and_assert_specific_cfg`` does: a key the method does not declare, or a value of the wrong type, is an
        error naming the method."""
        given = OmegaConf.to_container(method_cfg, resolve=True) if OmegaConf.is_config(method_cfg) else method_cfg
        keys = [f.name for f in dataclasses.fields(cls.Config)]
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise SoloOsslError(
                f"method {cls.name} has no key {', '.join('method.' + k for k in unknown)} (its keys: "
                f"{', '.join(keys)}): remove it, or choose a method that has it"
            )
        try:
            return OmegaConf.merge(OmegaConf.structured(cls.Config), given)
        except OmegaConfBaseException as e:
            key = f" (key 'method.{e.full_key}')" if getattr(e, "full_key", None) else ""
            raise SoloOsslError(f"method {cls.name}{key}: {str(e).splitlines()[0]}") from e

    @classmethod
    def scoring_group_size(cls, method_cfg) -> int:
        """Samples per scoring unit: ``method.group_size``, or the method's default when it is null."""
        return int(method_cfg.group_size or cls.default_group_size)

    # ---- what a method defines -------------------------------------------------------------------------
    def build_projector(self, features_dim: int, method_cfg) -> nn.Module:
        raise NotImplementedError

    def build_predictor(self, method_cfg) -> nn.Module | None:
        """The head that predicts a view's projection (``p``) from its ``z`` (BYOL, SimSiam, MoCo v3); None: none."""
        return None

    def ssl_loss(self, out1: dict, out2: dict) -> torch.Tensor:
        """The method's loss over a batch, from two views' outputs."""
        raise NotImplementedError

    def unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        """Loss of each scoring unit (sample or group of ``group_size`` samples), shape ``[B // group_size]``."""
        raise NotImplementedError

    def distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        """CaSSLe's loss between the predicted current projections of every view and the frozen model's
        projections of the same views (unweighted; ``cassle.distill_lamb`` is applied by the distiller)."""
        raise NotImplementedError

    @property
    def learnable_params(self) -> list[dict]:
        """The method's trained modules, as solo-learn lists them (``name``, ``params``, and its own keys)."""
        modules = [{"name": "backbone", "params": self.backbone}, {"name": "projector", "params": self.projector}]
        if self.predictor is not None:
            modules.append({"name": "predictor", "params": self.predictor, **self.predictor_keys})
        return modules

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, momentum target) pairs updated by an EMA after every optimizer step."""
        return []

    # ---- over the global batch (several processes) ------------------------------------------------------
    def global_ssl_loss(self, out1: dict, out2: dict, sizes: list[int] | None = None) -> torch.Tensor:
        """``ssl_loss`` over every process's samples, as one process computes it over the whole batch: SimCLR's
        negatives, Barlow Twins' standardization and cross-correlation, VICReg's variance and covariance, and the
        per-sample means of the others, all over the global batch (``gather_outputs``; ``sizes`` where the
        processes hold different numbers of samples). One process: ``ssl_loss`` itself."""
        return self.ssl_loss(gather_outputs(out1, sizes), gather_outputs(out2, sizes))

    def global_unit_losses(self, out1: dict, out2: dict) -> torch.Tensor:
        """This process's ``unit_losses``, scored within the global batch (SimCLR's and MoCo v3's negatives come
        from every process); a group of ``group_size`` stays within its process."""
        return own_rows(self.unit_losses(gather_outputs(out1), gather_outputs(out2)))

    def global_distill_loss(self, predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
        """``distill_loss`` over every process's samples (CaSSLe's contrastive and decorrelative distillers couple
        the batch as their methods do)."""
        return self.distill_loss([gather_with_grad(p) for p in predictions], [gather_with_grad(z) for z in frozen])

    # ---- shared ----------------------------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def forward(self, x: torch.Tensor, momentum: bool = True) -> dict[str, torch.Tensor]:
        feats = self.backbone(self._prepare(x))
        out = {"feats": feats, "z": self.projector(feats)}
        if self.predictor is not None:
            out["p"] = self.predictor(out["z"])
        return out

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """The EMA of every momentum pair after optimizer step ``step`` (0-based) of ``total_steps``, with tau on
        solo-learn's cosine from ``momentum.base_tau`` (at step 0) to ``momentum.final_tau``."""
        pairs = self.momentum_pairs
        if pairs:
            tau = cosine_tau(step, total_steps, self.cfg.momentum.base_tau, self.cfg.momentum.final_tau)
            for online, target in pairs:
                ema_update(online, target, tau)

    def classifier_loss(self, feats: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Online linear classifier on detached features (monitoring only, as in solo-learn)."""
        logits = [self.classifier(f.detach()) for f in feats]
        # Unlabeled samples (-1) are ignored; a batch without labels gives 0, not 0/0 (checked without a host read).
        losses = (F.cross_entropy(lg.float(), targets, ignore_index=-1).nan_to_num(0.0) for lg in logits)
        loss = sum(losses) / len(logits)
        acc = (logits[0].argmax(1) == targets).float().mean()
        return loss, acc

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # [indexes, uint8 images (file indices with DALI), targets] -> [indexes, [view1, view2], targets], augmented
        # on the device, unless the regime augments inside its step.
        if self.trainer is not None and self.trainer.training and self.regime.augments_batches:
            indexes, images, targets = batch
            return [indexes, self.augment(images), targets]
        return batch

    def training_step(self, batch, batch_idx: int):
        return self.regime.training_step(self, batch, batch_idx)

    def offline_step(self, batch, batch_idx: int) -> torch.Tensor:
        """One offline batch: the SSL loss of two augmented views, the regime's extra terms and the classifier."""
        _, views, targets = batch
        outs = [self(v) for v in views]
        ssl = self.global_ssl_loss(outs[0], outs[1])
        check_finite(ssl, f"epoch {self.current_epoch}, batch {batch_idx}")
        class_loss, acc = self.classifier_loss([o["feats"] for o in outs], targets)
        self.log_dict({"train_loss": ssl, "train_class_loss": class_loss, "train_acc1": acc}, prog_bar=True)
        extra = self.regime.extra_losses(self, views, outs)
        if extra:
            self.log_dict(extra, prog_bar=True)
        return ssl + sum(extra.values()) + class_loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.automatic_optimization and self.momentum_pairs:
            self.after_optimizer_step(self.trainer.global_step - 1, int(self.trainer.estimated_stepping_batches))

    def on_train_start(self) -> None:
        self.regime.on_train_start(self)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self.regime.on_train_batch_start(self)

    def on_train_end(self) -> None:
        self.regime.on_train_end(self)

    def validation_step(self, batch, batch_idx: int):
        _, images, targets = batch
        logits = self.classifier(self.backbone(self._prepare(self.eval_transform(images))))
        self.val_acc1(logits, targets)
        self.log("val_acc1", self.val_acc1, prog_bar=True)

    def param_groups(self) -> list[dict]:
        """SSL weights (decayed, LARS-adapted); biases and norms (no decay, so timm's Lars does not adapt them);
        the online classifier (its own lr, no decay). A ``learnable_params`` entry with its own ``lr``,
        ``weight_decay`` or ``static_lr`` (solo-learn's keys) gets groups of its own; ``static_lr`` keeps that lr
        through every schedule (``keep_static_lrs``)."""
        opt = self.cfg.optimizer
        entries = [*self.learnable_params, *({"params": m} for m in self.regime.trained_modules())]
        shared = [e for e in entries if not {"lr", "weight_decay", "static_lr"} & e.keys()]
        own = [e for e in entries if e not in shared]
        groups = []
        for entry in [{"params": [e["params"] for e in shared]}, *own]:
            modules = entry["params"] if isinstance(entry["params"], list) else [entry["params"]]
            decay, no_decay = [], []
            for module in modules:
                for p in module.parameters():
                    (no_decay if opt.exclude_bias_n_norm and p.ndim <= 1 else decay).append(p)
            lr = entry.get("lr", opt.lr)
            extra = {"name": entry["name"]} if "name" in entry and entry in own else {}
            if entry.get("static_lr"):
                extra.update(static_lr=True, base_lr=lr)
            groups.append(
                {"params": decay, "weight_decay": entry.get("weight_decay", opt.weight_decay), "lr": lr, **extra}
            )
            if no_decay:
                groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr, **extra})
        groups.append(
            {
                "params": list(self.classifier.parameters()),
                "weight_decay": 0.0,
                "lr": opt.classifier_lr,
                "name": "classifier",
            }
        )
        return groups

    def build_optimizer(self) -> torch.optim.Optimizer:
        opt = self.cfg.optimizer
        if opt.name == "lars":
            return Lars(
                self.param_groups(), lr=opt.lr, momentum=opt.momentum, trust_coeff=opt.eta, trust_clip=opt.clip_lr
            )
        return torch.optim.SGD(self.param_groups(), lr=opt.lr, momentum=opt.momentum)

    def configure_optimizers(self):
        optimizer = self.build_optimizer()
        sched = self.cfg.scheduler
        if self.regime.manual_optimization or sched.name == "none":
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = warmup_cosine(
            optimizer,
            total_steps=total,
            steps_per_epoch=max(1, total // max(1, self.trainer.max_epochs)),
            warmup_epochs=sched.warmup_epochs,
            max_warmup_share=sched.max_warmup_share,
            warmup_start_factor=sched.warmup_start_factor,
            min_lr=sched.min_lr,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": keep_static_lrs(scheduler), "interval": "step"}}

    # ---- checkpoints -----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["solo_ossl"] = {
            "method": self.name,
            "num_classes": self.num_classes,
            "config": OmegaConf.to_container(self.cfg, resolve=True, enum_to_str=True),
        }
        checkpoint.update(self.regime.checkpoint_state())

    def load_pretrained(self, path: str) -> set[str]:
        """Initialize the backbone, and the projector, predictor and momentum targets where the checkpoint has them
        (and the regime's modules, e.g. CaSSLe's predictor), from a checkpoint of the same method (e.g. the task-1
        model, or the previous CaSSLe task). Returns the names of the modules loaded."""
        checkpoint = read_checkpoint(path)
        self.check_same_method(checkpoint, path)
        load_into(self.backbone, backbone_state(checkpoint, path), "backbone", path)
        state = checkpoint.get("state_dict", {})
        loaded, peer = {"backbone"}, is_peer_checkpoint(checkpoint)
        for name in self.scored_modules[1:]:
            sub = submodule_state(state, f"{name}.")
            if sub and peer and not fits(self.get_submodule(name), sub):
                print(f"note: the {name} of {path} (another code's checkpoint) does not fit this model: not loaded")
            elif sub:
                load_into(self.get_submodule(name), sub, name, path)
                loaded.add(name)
        self.regime.on_load_pretrained(self, state, path)
        return loaded

    def check_same_method(self, checkpoint: dict, path: str) -> None:
        method = checkpoint.get("solo_ossl", {}).get("method")
        if method is not None and method != self.name:
            raise SoloOsslError(
                f"checkpoint {path} was trained with method '{method}' but this run is '{self.name}': "
                f"pass a {self.name} checkpoint or set ++method.name={method}"
            )
