"""An online run without Lightning: the model, its learner, an optimizer and the stream's batches, for the
throughput benchmark's bare loop and for tests of the online algorithm (``solo_ossl.online.algorithm``)."""

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from solo_ossl.data import build_datasets
from solo_ossl.methods import BaseMethod
from solo_ossl.model import build_model
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.stream import StreamBatchSampler
from solo_ossl.run.common import class_split, configured_stream, heldout_images
from solo_ossl.run.validate import validate_pretrain
from solo_ossl.utils.device import training_device


@dataclass
class BareOnlineRun:
    model: BaseMethod
    learner: OnlineLearner
    optimizer: torch.optim.Optimizer
    splits: object
    order: torch.Tensor
    device: torch.device

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The stream's batches (indexes, images, labels) on the training device, as the Lightning loader gives
        them."""
        train = self.splits.train
        for indexes in StreamBatchSampler(self.order, self.learner.cfg.stream_batch_size):
            index = torch.tensor(indexes)
            yield index.to(self.device), train.images[index].to(self.device), train.targets[index].to(self.device)


def bare_online_run(cfg) -> BareOnlineRun:
    """An online config (``regime: online``, array data) ready to train outside Lightning, seeded as a run is."""
    validate_pretrain(cfg)
    torch.manual_seed(cfg.seed)
    device = training_device(cfg.accelerator)
    splits = build_datasets(cfg.data, cfg.seed)
    _, tasks = class_split(cfg, splits)
    order = torch.cat(configured_stream(cfg, splits.train.targets, tasks)[1])
    model = build_model(cfg, splits.num_classes, splits.mean, splits.std, splits.train).to(device).train()
    model.regime.plan_stream(-(-len(order) // cfg.online.stream_batch_size))
    if cfg.online.probe_heldout:
        model.regime.hold_out(heldout_images(cfg, splits, tasks))
    return BareOnlineRun(model, model.regime.learner, model.build_optimizer(), splits, order, device)
