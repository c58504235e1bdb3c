"""MoCo v3's loss (Chen, Xie & He, 2021): InfoNCE of each query against the batch's keys, its own key positive."""

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _all_keys(key: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The keys of every process (without gradient; solo-learn's ``concat_all_gather_no_grad``) and the offset of this
    process's keys among them."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return key, 0
    gathered = [torch.empty_like(key) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, key.contiguous())
    return torch.cat(gathered), key.size(0) * dist.get_rank()


def mocov3_loss_per_sample(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Per query, ``2 T`` times its cross-entropy against the keys of this batch (no gather: RALS scores locally),
    keys without gradient, shape ``[N]``."""
    with torch.autocast(device_type=query.device.type, enabled=False):
        q, k = F.normalize(query.float(), dim=1), F.normalize(key.detach().float(), dim=1)
        logits = q @ k.T / temperature
        targets = torch.arange(q.size(0), device=q.device)
        return F.cross_entropy(logits, targets, reduction="none") * (2 * temperature)


def mocov3_loss_func(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """solo-learn's ``mocov3_loss_func``: the mean cross-entropy of each L2-normalized query against every process's
    keys (logits ``q . k / T``, its own key the positive), times ``2 T``."""
    with torch.autocast(device_type=query.device.type, enabled=False):
        q = F.normalize(query.float(), dim=1)
        k, offset = _all_keys(F.normalize(key.detach().float(), dim=1))
        logits = q @ k.T / temperature
        targets = torch.arange(q.size(0), device=q.device) + offset
        return F.cross_entropy(logits, targets) * (2 * temperature)
