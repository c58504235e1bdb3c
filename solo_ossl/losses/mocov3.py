"""MoCo v3's loss (Chen, Xie & He, 2021): InfoNCE of each query against the batch's keys, its own key positive."""

import torch
import torch.nn.functional as F


def mocov3_loss_per_sample(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Per query, ``2 T`` times its cross-entropy against the keys of this batch, keys without gradient, shape
    ``[N]``."""
    with torch.autocast(device_type=query.device.type, enabled=False):
        q, k = F.normalize(query.float(), dim=1), F.normalize(key.detach().float(), dim=1)
        logits = q @ k.T / temperature
        targets = torch.arange(q.size(0), device=q.device)
        return F.cross_entropy(logits, targets, reduction="none") * (2 * temperature)


def mocov3_loss_func(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """solo-learn's ``mocov3_loss_func``: the mean cross-entropy of each L2-normalized query against the batch's
    keys (logits ``q . k / T``, its own key the positive), times ``2 T``. Over several processes the method passes
    the global batch's queries and keys (``BaseMethod.global_ssl_loss``), which gives solo-learn's value: each
    process's queries against every process's keys, averaged."""
    with torch.autocast(device_type=query.device.type, enabled=False):
        q, k = F.normalize(query.float(), dim=1), F.normalize(key.detach().float(), dim=1)
        logits = q @ k.T / temperature
        targets = torch.arange(q.size(0), device=q.device)
        return F.cross_entropy(logits, targets) * (2 * temperature)
