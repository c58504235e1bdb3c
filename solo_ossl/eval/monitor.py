"""kNN accuracy logged during online training, on a fixed, seeded subset of the training and test sets."""

from collections.abc import Callable

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import Dataset, Subset

from solo_ossl.eval.features import extract_features
from solo_ossl.eval.knn import knn_accuracy


def fixed_subset(dataset: Dataset, size: int, seed: int) -> Dataset:
    """``size`` samples of ``dataset`` drawn once with ``seed`` (all of it when it is smaller)."""
    if size <= 0 or size >= len(dataset):
        return dataset
    return Subset(dataset, torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size].tolist())


class KnnMonitor(Callback):
    """Weighted-kNN top-1 of the backbone every ``eval.every`` stream batches and at each task end, logged as
    ``knn_top1`` with ``knn_stream_batch`` (rows of their own in metrics.csv, and the progress bar). The backbone
    runs in eval mode (BatchNorm running statistics) and is put back in the mode it was in; no global random state
    is drawn."""

    def __init__(
        self,
        eval_cfg,
        train_set: Dataset,
        test_set: Dataset,
        transforms: tuple[nn.Module, nn.Module],
        task_ends,
        position: Callable[[nn.Module], int],
    ) -> None:
        self.cfg = eval_cfg
        self.train = fixed_subset(train_set, eval_cfg.train_samples, eval_cfg.seed)
        self.test = fixed_subset(test_set, eval_cfg.test_samples, eval_cfg.seed + 1)
        self.train_transform, self.test_transform = transforms
        self.task_ends = set(task_ends)
        self.position = position  # stream batches done by the trained module

    def due(self, position: int) -> bool:
        return position in self.task_ends or (self.cfg.every > 0 and position % self.cfg.every == 0)

    def measure(self, pl_module) -> float:
        backbone = pl_module.backbone
        training = backbone.training
        backbone.eval()
        try:
            args = (pl_module.cfg.channels_last, str(pl_module.trainer.precision))
            train_x, train_y = extract_features(backbone, self.train, self.train_transform, 256, *args)
            test_x, test_y = extract_features(backbone, self.test, self.test_transform, 256, *args)
        finally:
            backbone.train(training)
        knn = self.cfg.knn
        return knn_accuracy(train_x, train_y, test_x, test_y, knn.k, knn.temperature)[0]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        position = self.position(pl_module)
        if not self.due(position) or not trainer.is_global_zero:  # one process measures and logs
            return
        top1 = self.measure(pl_module)
        # A row of its own (Lightning would repeat a callback-logged value on every later row).
        for logger in trainer.loggers:
            logger.log_metrics({"knn_top1": top1, "knn_stream_batch": position}, step=trainer.global_step)
        pl_module.log("knn_top1", top1, prog_bar=True, logger=False, on_step=True, on_epoch=False)
