"""SimCLR's NT-Xent loss, for the batch and per sample (the paper's l_ij + l_ji)."""

import torch
import torch.nn.functional as F


def _view_logits(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine-similarity logits between all views, the self-similarity masked out."""
    z = F.normalize(z.float(), dim=1)
    logits = z @ z.T / temperature
    return logits.fill_diagonal_(float("-inf"))


def simclr_loss_func(z: torch.Tensor, indexes: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent over all views in ``z`` ([2B, D]); views sharing an index are positives.

    Returns the mean over every view used as an anchor, as solo-learn's ``simclr_loss_func``.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        logits = _view_logits(z, temperature)
        positives = indexes.unsqueeze(0) == indexes.unsqueeze(1)
        positives.fill_diagonal_(False)
        log_prob = logits.log_softmax(dim=1)
        # Several positives per anchor are averaged (a view may share its index with more than one other).
        positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1)
        return -positive_log_prob.mean()


def simclr_loss_per_sample(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Per-sample NT-Xent, ``l(i->i') + l(i'->i)``, shape ``[B]``.

    ``simclr_loss_per_sample(z1, z2, t).mean() / 2`` equals the batch loss ``simclr_loss_func``.
    """
    batch = z1.size(0)
    with torch.autocast(device_type=z1.device.type, enabled=False):
        logits = _view_logits(torch.cat([z1, z2]), temperature)
        partner = torch.arange(2 * batch, device=z1.device).roll(batch)  # view i's positive is view i +- batch
        per_view = F.cross_entropy(logits, partner, reduction="none")
        return per_view[:batch] + per_view[batch:]
