"""Linear evaluation of a frozen backbone: what ``main_linear.py`` runs.

``features`` mode extracts features once (no augmentation) and trains the linear layer on them, which on a CPU is
orders of magnitude faster; ``augmented`` mode is solo-learn's protocol (random crops and flips each epoch).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from solo_ossl.backbones import build_backbone
from solo_ossl.data import EvalTransform, LinearTrainAugment, build_datasets
from solo_ossl.data.dali import use_dali
from solo_ossl.data.datasets import collate_readable, loader_workers
from solo_ossl.eval.features import extract_features
from solo_ossl.eval.knn import knn_accuracy, knn_predictions, ranked_accuracy
from solo_ossl.run.validate import validate_linear
from solo_ossl.utils.checkpoint import backbone_state, checkpoint_backbone_config, load_into, read_checkpoint
from solo_ossl.utils.device import (
    configure_device_defaults,
    describe_run_device,
    resolve_precision,
    trainer_precision,
    training_device,
)
from solo_ossl.utils.distributed import check_devices, trainer_distribution
from solo_ossl.utils.errors import SoloOsslError
from solo_ossl.utils.logs import quiet_lightning


def load_backbone(cfg: DictConfig) -> nn.Module:
    """The frozen backbone to evaluate; its shape comes from the checkpoint when it records one."""
    backbone_cfg = cfg.backbone
    if cfg.random_init:
        backbone = build_backbone(backbone_cfg, cfg.data.crop_size)
    else:
        if not cfg.pretrained_ckpt:
            raise SoloOsslError("pass ++pretrained_ckpt=<checkpoint> (or ++random_init=true for a random baseline)")
        checkpoint = read_checkpoint(cfg.pretrained_ckpt)
        saved = checkpoint_backbone_config(checkpoint)
        if saved is not None:
            backbone_cfg = OmegaConf.merge(backbone_cfg, saved)
        backbone = build_backbone(backbone_cfg, cfg.data.crop_size)
        load_into(backbone, backbone_state(checkpoint, cfg.pretrained_ckpt), "backbone", cfg.pretrained_ckpt)
    return backbone.requires_grad_(False).eval()


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    out = {}
    for k in (1, 5):
        if k <= num_classes:
            metric = torchmetrics.Accuracy("multiclass", num_classes=num_classes, top_k=k)
            out[f"top{k}"] = 100 * metric(logits, labels).item()
    return out


def linear_schedule(
    optimizer: torch.optim.Optimizer, cfg: DictConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step lr schedule of the linear layer. ``step``: CaSSLe's protocol, lr x0.1 at the epochs in
    ``lr_decay_steps`` (60 and 80 of 100; cassle/bash_files/linear/imagenet-100/class/barlow_linear.sh);
    ``cosine``: cosine decay to 0 over the run."""
    if cfg.scheduler == "step":
        milestones = [epoch * steps_per_epoch for epoch in cfg.lr_decay_steps]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.max_epochs * steps_per_epoch)


def train_linear_on_features(train_x, train_y, num_classes: int, cfg: DictConfig) -> nn.Linear:
    """SGD with momentum and ``linear_schedule`` on fixed features."""
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = nn.Linear(train_x.size(1), num_classes)
    optimizer = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = linear_schedule(optimizer, cfg, math.ceil(len(train_x) / cfg.batch_size))
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=cfg.batch_size, shuffle=True, generator=generator)
    for _ in range(cfg.max_epochs):
        for x, y in loader:
            loss = F.cross_entropy(head(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return head


class LinearProbe(L.LightningModule):
    """Frozen backbone (eval mode, BN statistics fixed) + trainable linear layer, augmented inputs."""

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: DictConfig, mean, std) -> None:
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.classifier = nn.Linear(backbone.num_features, num_classes)
        self.augment = LinearTrainAugment(cfg.data.crop_size, mean, std)
        self.eval_transform = EvalTransform(cfg.data.crop_size, mean, std)

    def _logits(self, x):
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            feats = self.backbone(x)
        return self.classifier(feats.float())

    def on_train_epoch_start(self) -> None:
        self.backbone.eval()

    def training_step(self, batch, batch_idx):
        _, images, targets = batch
        loss = F.cross_entropy(self._logits(self.augment(images)), targets)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        c = self.cfg
        opt = torch.optim.SGD(self.classifier.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        steps_per_epoch = max(1, int(self.trainer.estimated_stepping_batches) // max(1, self.trainer.max_epochs))
        sched = linear_schedule(opt, c, steps_per_epoch)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@dataclass
class Evaluation:
    """A frozen backbone's test predictions: linear-probe logits and, when frozen training features were
    extracted (features mode, or ``knn``), the weighted-kNN class ranking."""

    num_classes: int
    test_targets: torch.Tensor
    linear_logits: torch.Tensor
    knn_ranked: torch.Tensor | None
    results: dict


def frozen_setup(cfg: DictConfig):
    """The run's data (and DALI transforms), the frozen backbone on the training device (``accelerator``), and the
    precision for that device."""
    validate_linear(cfg)
    quiet_lightning(frozen_backbone=True)
    L.seed_everything(cfg.seed, verbose=False)
    device = training_device(cfg.accelerator)
    configure_device_defaults(device, cfg.deterministic)
    if rank_zero_only.rank == 0:
        print(describe_run_device(cfg.precision, cfg.accelerator))
    splits, dali = use_dali(cfg.data, build_datasets(cfg.data, cfg.seed), cfg.seed, cfg.accelerator)
    if not splits.labeled:
        raise SoloOsslError(
            f"data.dataset={cfg.data.dataset} has no labels, and evaluation needs them: evaluate on a labeled dataset "
            "(imagefolder, cifar100, npz, ...)"
        )
    backbone = load_backbone(cfg).to(device)
    if cfg.channels_last:
        backbone.to(memory_format=torch.channels_last)
    return splits, dali, backbone, resolve_precision(cfg.precision, cfg.accelerator)


def split_features(cfg: DictConfig, splits, dali, backbone, precision: str, split: str):
    """Frozen features of the ``train`` or ``test`` split, without augmentation (resize + center crop)."""
    transform = EvalTransform(cfg.data.crop_size, splits.mean, splits.std)
    if dali:
        transform = dali["eval_train" if split == "train" else "eval"]
    dataset = splits.train if split == "train" else splits.test
    return extract_features(backbone, dataset, transform, 256, cfg.channels_last, precision)


def evaluate(cfg: DictConfig, knn: bool = True) -> Evaluation:
    """Linear probe (``cfg.mode``) and, with ``knn``, weighted kNN (``cfg.knn``) of the configured backbone."""
    splits, dali, backbone, precision = frozen_setup(cfg)
    test_x, test_y = split_features(cfg, splits, dali, backbone, precision, "test")
    train_x = train_y = None
    if cfg.mode == "features" or knn:
        train_x, train_y = split_features(cfg, splits, dali, backbone, precision, "train")
    if cfg.mode == "features":
        if check_devices(cfg) > 1:
            print("note: features mode trains the linear layer in this one process (devices applies to augmented)")
        head = train_linear_on_features(train_x, train_y, splits.num_classes, cfg)
    else:
        head = _train_linear_augmented(cfg, backbone, splits, dali, precision)
    with torch.no_grad():
        logits = head(test_x)
    results = topk_accuracy(logits, test_y, splits.num_classes)
    knn_ranked = None
    if knn:
        knn_ranked = knn_predictions(train_x, train_y, test_x, cfg.knn.k, cfg.knn.temperature)
        results["knn_top1"], results["knn_top5"] = ranked_accuracy(knn_ranked, test_y)
    results.update(
        checkpoint="random_init" if cfg.random_init else cfg.pretrained_ckpt,
        mode=cfg.mode,
        epochs=cfg.max_epochs,
        dataset=cfg.data.dataset,
        num_classes=splits.num_classes,
        test_samples=len(test_y),
    )
    return Evaluation(splits.num_classes, test_y, logits, knn_ranked, results)


def _train_linear_augmented(cfg: DictConfig, backbone: nn.Module, splits, dali, precision: str) -> nn.Linear:
    probe = LinearProbe(backbone, splits.num_classes, cfg, splits.mean, splits.std)
    if dali:
        probe.augment = dali["linear_train"]
    loader = DataLoader(
        splits.train,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=loader_workers(splits.train, cfg.data.num_workers),
        generator=torch.Generator().manual_seed(cfg.seed),
        collate_fn=collate_readable,
    )
    trainer = L.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        **trainer_distribution(cfg),
        **trainer_precision(precision, cfg.accelerator),
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    trainer.fit(probe, loader)
    return probe.classifier.cpu()


def run_knn(cfg: DictConfig) -> dict:
    """Weighted kNN (``cfg.knn``) of the frozen backbone: training-set features vote for each test sample."""
    splits, dali, backbone, precision = frozen_setup(cfg)
    train_x, train_y = split_features(cfg, splits, dali, backbone, precision, "train")
    test_x, test_y = split_features(cfg, splits, dali, backbone, precision, "test")
    top1, top5 = knn_accuracy(train_x, train_y, test_x, test_y, cfg.knn.k, cfg.knn.temperature)
    return {
        "knn_top1": top1,
        "knn_top5": top5,
        "k": cfg.knn.k,
        "temperature": cfg.knn.temperature,
        "checkpoint": "random_init" if cfg.random_init else cfg.pretrained_ckpt,
        "dataset": cfg.data.dataset,
        "train_samples": len(train_y),
        "test_samples": len(test_y),
    }


def run_linear(cfg: DictConfig) -> dict:
    """``evaluate`` and write its results to ``cfg.output_json`` (default ``<output_dir>/<name>/linear_results.json``)."""
    results = evaluate(cfg, knn=cfg.knn.enabled).results
    if rank_zero_only.rank == 0:  # with devices > 1 (augmented mode), every process evaluates; one writes
        out = Path(cfg.output_json) if cfg.output_json else Path(cfg.output_dir) / cfg.name / "linear_results.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results
