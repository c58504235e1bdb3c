"""CaSSLe's class-incremental split: a seeded permutation of the classes, cut into equal tasks."""

import torch

from solo_ossl.utils.errors import SoloOsslError


def class_order(num_classes: int, seed: int, explicit: list[int] | None = None) -> list[int]:
    """The order classes are split into tasks: ``explicit`` if given, else ``torch.randperm`` seeded with ``seed``."""
    if explicit is not None:
        if sorted(explicit) != list(range(num_classes)):
            raise SoloOsslError(
                f"data.class_order must be a permutation of 0..{num_classes - 1}, got {len(explicit)} entries"
            )
        return list(explicit)
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()


def split_tasks(order: list[int], num_tasks: int) -> list[list[int]]:
    """The classes of each task, in ``order``; every task gets the same number of classes."""
    if num_tasks < 1 or len(order) % num_tasks:
        raise SoloOsslError(f"{len(order)} classes cannot be split into {num_tasks} equal tasks (data.num_tasks)")
    size = len(order) // num_tasks
    return [order[i * size : (i + 1) * size] for i in range(num_tasks)]


def task_sample_indices(targets: torch.Tensor, task_classes: list[list[int]], tasks: list[int]) -> list[torch.Tensor]:
    """For each 1-based task id in ``tasks``, the indices (ascending) of samples whose class belongs to it."""
    out = []
    for task in tasks:
        if not 1 <= task <= len(task_classes):
            raise SoloOsslError(f"task {task} does not exist: tasks are numbered 1..{len(task_classes)}")
        member = torch.isin(targets, torch.tensor(task_classes[task - 1]))
        out.append(member.nonzero().flatten())
    return out
