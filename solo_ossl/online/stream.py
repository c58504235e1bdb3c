"""The class-incremental stream: task after task, shuffled within each task, cut into batches."""

import torch
from torch.utils.data import Sampler

from solo_ossl.data.tasks import task_sample_indices
from solo_ossl.utils.errors import SoloOsslError


def stream_order(
    targets: torch.Tensor, task_classes: list[list[int]], tasks: list[int], seed: int, order: str = "class_incremental"
) -> torch.Tensor:
    """Dataset indices in stream order: ``class_incremental``, the given tasks in order, each task's samples in a
    seeded shuffle; ``iid``, the same samples in one seeded shuffle; ``as_stored``, the same samples in dataset
    order (an unlabeled folder's path order: a recorded stream). Unlabeled data (targets -1) has no tasks: every
    sample is streamed, and only ``iid`` and ``as_stored`` apply."""
    generator = torch.Generator().manual_seed(seed)
    if bool((targets < 0).all()):
        if order == "class_incremental":
            raise SoloOsslError(
                "an unlabeled stream has no classes to split into tasks: set ++online.stream.order=iid or as_stored"
            )
        samples = torch.arange(len(targets))
    else:
        parts = task_sample_indices(targets, task_classes, tasks)
        samples = torch.cat([idx[torch.randperm(len(idx), generator=generator)] for idx in parts])
    if order == "iid":
        return samples[torch.randperm(len(samples), generator=generator)]
    if order == "as_stored":
        return samples.sort().values
    return samples


class StreamBatchSampler(Sampler[list[int]]):
    """Consecutive batches of ``order``, starting at batch ``start`` (a resumed run skips what it has seen).

    With ``world`` processes, each stream batch is split into ``world`` consecutive parts and this process (``rank``)
    gets its own: every sample is trained on in its stream batch by exactly one process."""

    def __init__(self, order: torch.Tensor, batch_size: int, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.batches = [batch.tensor_split(world)[rank] for batch in torch.split(order, batch_size)]
        self.start = start

    def __len__(self) -> int:
        return len(self.batches) - self.start

    def __iter__(self):
        for batch in self.batches[self.start :]:
            yield batch.tolist()
