"""CaSSLe's distillation losses between predicted projections and a frozen model's projections."""

import torch
import torch.nn.functional as F


def simclr_distill_loss(p: torch.Tensor, z_frozen: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Contrastive distillation: prediction i's positive is frozen projection i, the other frozen projections of
    the batch are its negatives (InfoNCE, mean over the batch)."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        logits = F.normalize(p.float(), dim=1) @ F.normalize(z_frozen.float(), dim=1).T / temperature
        return F.cross_entropy(logits, torch.arange(p.size(0), device=p.device))
