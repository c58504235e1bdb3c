"""Consecutive groups of samples scored as batches of their own (RALS's units for batch-statistic losses)."""

import torch


def split_groups(z: torch.Tensor, group_size: int, loss_name: str) -> torch.Tensor:
    """``z`` ``[B, D]`` as ``[B // group_size, group_size, D]`` in float32, refusing groups that cannot be scored."""
    batch, dim = z.shape
    if group_size < 2:
        raise ValueError(f"group_size must be at least 2 (got {group_size}): a group's variance needs two samples")
    if batch % group_size:
        raise ValueError(
            f"batch size {batch} is not divisible by group_size {group_size}: "
            f"{loss_name} scores whole groups, choose sizes that divide evenly"
        )
    return z.float().view(-1, group_size, dim)
