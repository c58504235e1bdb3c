"""The class-incremental stream: task after task, shuffled within each task, cut into batches."""

import math

import torch
from torch.utils.data import Sampler

from solo_ossl.data.tasks import task_sample_indices
from solo_ossl.utils.errors import SoloOsslError


def move_to_neighbours(segments: list[torch.Tensor], share: float, generator: torch.Generator) -> list[torch.Tensor]:
    """``share`` of every task's samples (the last of its shuffle) moves to a neighbouring task (the previous or the
    next, drawn per sample; the first and the last task have one neighbour), and every task's segment is shuffled
    again with the samples it received: a task's samples may appear anywhere in its neighbours' segments."""
    received: list[list[torch.Tensor]] = [[] for _ in segments]
    kept = []
    for t, segment in enumerate(segments):
        moved = round(share * len(segment))
        kept.append(segment[: len(segment) - moved])
        leaving = segment[len(segment) - moved :]
        neighbours = [n for n in (t - 1, t + 1) if 0 <= n < len(segments)]
        pick = torch.randint(len(neighbours), (moved,), generator=generator)
        for i, n in enumerate(neighbours):
            received[n].append(leaving[pick == i])
    merged = [torch.cat([segment, *incoming]) for segment, incoming in zip(kept, received, strict=True)]
    return [m[torch.randperm(len(m), generator=generator)] for m in merged]


def blend_boundaries(segments: list[torch.Tensor], ratio: float, generator: torch.Generator) -> list[torch.Tensor]:
    """SCALE's blurred boundaries (Orienfish/SCALE, ``data_utils.py``, ``SeqSampler.__iter__``): at the boundary of
    tasks t - 1 and t, for the b = int(min(their sizes) x ``ratio`` / 2) samples on either side, the i-th sample
    after the boundary swaps with the i-th before it with probability 0.5 - 0.45 i / b (0.5 at the boundary, falling
    linearly). Segment sizes stay; samples cross one boundary only, near it."""
    segments = [s.clone() for s in segments]
    for t in range(1, len(segments)):
        before, after = segments[t - 1], segments[t]
        b = int(min(len(before), len(after)) * ratio / 2)
        if b == 0:
            continue
        swap = torch.rand(b, generator=generator) < 0.5 - 0.45 * torch.arange(b) / b
        i = swap.nonzero().flatten()
        before[-i - 1], after[i] = after[i].clone(), before[-i - 1].clone()
    return segments


BLURRY_BOUNDARIES = {"neighbours": move_to_neighbours, "boundary": blend_boundaries}


def task_segments(
    targets: torch.Tensor,
    task_classes: list[list[int]],
    tasks: list[int],
    generator: torch.Generator,
    blurry: float = 0.0,
    blurry_mode: str = "neighbours",
) -> list[torch.Tensor]:
    """Each streamed task's samples in stream order: the task's samples in a seeded shuffle, and with ``blurry`` > 0
    their boundaries blurred by ``BLURRY_BOUNDARIES[blurry_mode]``."""
    segments = [
        idx[torch.randperm(len(idx), generator=generator)] for idx in task_sample_indices(targets, task_classes, tasks)
    ]
    if blurry <= 0 or len(segments) < 2:
        return segments
    return BLURRY_BOUNDARIES[blurry_mode](segments, blurry, generator)


def stream_segments(
    targets: torch.Tensor,
    task_classes: list[list[int]],
    tasks: list[int],
    seed: int,
    order: str = "class_incremental",
    blurry: float = 0.0,
    blurry_mode: str = "neighbours",
) -> list[torch.Tensor]:
    """Dataset indices in stream order, as segments: ``class_incremental``, one segment per task in order
    (``task_segments``; its boundaries are the stream's task ends); ``iid``, the same samples in one seeded shuffle;
    ``as_stored``, the same samples in dataset order (an unlabeled folder's path order: a recorded stream). Unlabeled
    data (targets -1) has no tasks: every sample is streamed, and only ``iid`` and ``as_stored`` apply. The orders
    other than ``class_incremental`` are one segment (no task ends)."""
    generator = torch.Generator().manual_seed(seed)
    if bool((targets < 0).all()):
        if order == "class_incremental":
            raise SoloOsslError(
                "an unlabeled stream has no classes to split into tasks: set ++online.stream.order=iid or as_stored"
            )
        samples = torch.arange(len(targets))
    else:
        segments = task_segments(targets, task_classes, tasks, generator, blurry, blurry_mode)
        if order == "class_incremental":
            return segments
        samples = torch.cat(segments)
    if order == "iid":
        return [samples[torch.randperm(len(samples), generator=generator)]]
    return [samples.sort().values]


def stream_order(*args, **kwargs) -> torch.Tensor:
    """The dataset indices of ``stream_segments`` (same arguments), one segment after another."""
    return torch.cat(stream_segments(*args, **kwargs))


def task_ends(segments: list[torch.Tensor], tasks: list[int]) -> list[tuple[int, int]]:
    """(task, samples streamed through its end) of a class-incremental stream's segments."""
    ends = torch.tensor([len(s) for s in segments]).cumsum(0).tolist()
    return list(zip(tasks, ends, strict=True))


def batch_task_ends(ends: list[tuple[int, int]], batch_size: int, num_samples: int) -> dict[int, int]:
    """{stream batches done: task} at each task end of a stream cut at ``num_samples``: the stream batch that holds a
    task's last sample ends it."""
    last = math.ceil(num_samples / batch_size)
    return {min(math.ceil(end / batch_size), last): task for task, end in ends}


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
