"""CaSSLe's distillation losses between predicted projections and a frozen model's projections."""

import torch
import torch.nn.functional as F


def simclr_distill_loss_func(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """CaSSLe's contrastive distillation (cassle/losses/simclr.py, ``simclr_distill_loss_func``).

    Rows are the 2B predictions ``[p1; p2]``, columns the 2B projections ``[z1; z2]``, all L2-normalized, logits
    ``p . z / temperature``. Each row is a softmax over all 2B columns; its positive is the same image in the
    same view (row i, column i). Returns the mean cross-entropy over the 2B rows. CaSSLe's distiller uses
    ``(f(p, z) + f(z, p)) / 2`` (see ``SimCLR.distill_loss``).
    """
    with torch.autocast(device_type=p1.device.type, enabled=False):
        p = F.normalize(torch.cat([p1, p2]).float(), dim=1)
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
        logits = p @ z.T / temperature
        return F.cross_entropy(logits, torch.arange(logits.size(0), device=logits.device))
