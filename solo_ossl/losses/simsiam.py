"""SimSiam's loss (Chen & He, 2021): -cos(p, sg(z)) between a prediction and the other view's projection."""

import torch
import torch.nn.functional as F


def simsiam_loss_per_sample(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``-cos(p_i, z_i)`` per row, ``z`` without gradient, shape ``[N]``."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return -F.cosine_similarity(p.float(), z.detach().float(), dim=-1)


def simsiam_loss_func(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """solo-learn's ``simsiam_loss_func``: the mean over rows of ``-cos(p, sg(z))``."""
    return simsiam_loss_per_sample(p, z).mean()
