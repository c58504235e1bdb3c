"""CaSSLe's distillation losses between predicted projections and a frozen model's projections."""

import torch
import torch.nn.functional as F

from solo_ossl.losses.byol import byol_loss_func


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


def contrastive_distill_loss(
    predictions: list[torch.Tensor], frozen: list[torch.Tensor], temperature: float
) -> torch.Tensor:
    """CaSSLe's contrastive distiller (cassle/distillers/contrastive.py) for two views: symmetric,
    ``(f(p, z) + f(z, p)) / 2`` with ``f = simclr_distill_loss_func`` (SimCLR's and MoCo v3's)."""
    (p1, p2), (z1, z2) = predictions, frozen
    return (
        simclr_distill_loss_func(p1, p2, z1, z2, temperature) + simclr_distill_loss_func(z1, z2, p1, p2, temperature)
    ) / 2


def predictive_distill_loss(predictions: list[torch.Tensor], frozen: list[torch.Tensor]) -> torch.Tensor:
    """CaSSLe's predictive distiller (cassle/distillers/predictive.py): BYOL's loss of each view's prediction against
    the frozen projection of the same view, averaged over the views (BYOL's and SimSiam's)."""
    return sum(byol_loss_func(p, z) for p, z in zip(predictions, frozen, strict=True)) / len(predictions)
