"""Frozen features of a dataset through a backbone, on the backbone's device at a given precision."""

import torch
from torch import nn
from torch.utils.data import DataLoader

from solo_ossl.data.datasets import collate_readable, loader_workers
from solo_ossl.utils.device import autocast_dtype


@torch.no_grad()
def extract_features(
    backbone: nn.Module, dataset, transform: nn.Module, batch_size: int, channels_last: bool, precision: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features ``[N, D]`` float32 on the host, labels ``[N]``) of ``dataset`` after ``transform``."""
    feats, labels = [], []
    device = next(backbone.parameters()).device
    # Its own generator: iterating a DataLoader otherwise draws from the global RNG, which online runs checkpoint.
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=loader_workers(dataset, 2),
        generator=torch.Generator(),
        collate_fn=collate_readable,
    )
    dtype = autocast_dtype(precision)
    for _, images, targets in loader:
        x = transform(images.to(device))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            feats.append(backbone(x).float().cpu())
        labels.append(targets)
    return torch.cat(feats), torch.cat(labels)
