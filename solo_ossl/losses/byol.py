"""BYOL's loss (Grill et al., 2020): 2 - 2 cos(p, sg(z)) between a prediction and a momentum projection."""

import torch
import torch.nn.functional as F


def byol_loss_per_sample(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(p_i, z_i)`` per row, ``z`` without gradient, shape ``[N]``."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return 2 - 2 * F.cosine_similarity(p.float(), z.detach().float(), dim=-1)


def byol_loss_func(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """solo-learn's ``byol_loss_func``: the mean over rows of ``2 - 2 cos(p, sg(z))``, predictions ``p`` of one view
    against the momentum projections ``z`` of the other."""
    return byol_loss_per_sample(p, z).mean()
