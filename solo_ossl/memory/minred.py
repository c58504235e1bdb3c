"""MinRed (Purushwalkam, Morgado and Gupta, "The Challenges of Continuous Self-Supervised Learning", ECCV 2022, the
paper's [21]): a memory that, when full, removes its most redundant samples.

The rules are those of ``MinRedBufferBatchSampler`` in github.com/senthilps8/continuous_ssl_problem,
``datasets/mysampler.py``:
- each stored sample keeps an L2-normalized feature; a sample trained on again refreshes it by a Polyak average,
  ``normalize((1 - 0.5) * old + 0.5 * new)`` (``update_sample_stats``, gamma 0.5);
- a batch is added whole; while the memory then holds more than its capacity, the sample most similar to its
  nearest neighbour, similarity ``(cos + 1) / 2``, is removed, one at a time, the removed sample's similarities
  leaving the comparison (``resize_buffer``'s ``max_coverage_reduction``); ties go to the earliest-inserted sample
  (``torch.argmax`` over the buffer, which keeps insertion order);
- incoming samples compete with the stored ones, so an incoming sample can be removed at once.
Two differences of setting: the original buffer holds samples that the model has not trained on yet (without
features; while fewer than twice the samples to remove have features, it removes the oldest instead), while here a
stream batch enters the memory after its N steps, with features that the caller computes for it with the current
model, so every stored sample has one. The original's ``limit_num_seen_coeff`` (off by default there) is not kept.
"""

import torch
import torch.nn.functional as F

from solo_ossl.memory.base import ReplayMemory

POLYAK_GAMMA = 0.5


def most_redundant(features: torch.Tensor, count: int) -> list[int]:
    """Rows of ``features`` (L2-normalized, in insertion order) removed one at a time, each the row most similar to
    its nearest remaining neighbour. The nearest neighbours are kept and recomputed only for the rows whose nearest
    neighbour was removed, which gives the same choices as recomputing every row each time."""
    sim = (features @ features.T + 1) / 2
    sim.fill_diagonal_(-10.0)
    best, nearest = sim.max(dim=1)
    removed = []
    for _ in range(count):
        row = int(torch.argmax(best))  # the first maximum: the earliest-inserted sample
        removed.append(row)
        sim[row, :] = -10.0
        sim[:, row] = -10.0
        best[row] = -10.0
        stale = (nearest == row).nonzero().squeeze(1)
        if len(stale):
            best[stale], nearest[stale] = sim[stale].max(dim=1)
    return removed


class MinRedMemory(ReplayMemory):
    policy = "minred"
    needs_features = True

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        self.features: torch.Tensor | None = None
        self.inserted = torch.full((capacity,), -1, dtype=torch.long)  # stream position of each slot's sample

    def slots(self, n: int, features: torch.Tensor | None) -> torch.Tensor:
        room = self.capacity - self.size
        if n <= room:
            return torch.arange(self.size, self.size + n)
        by_age = torch.argsort(self.inserted[: self.size])  # stored slots in insertion order
        stored = self.features[by_age.to(self.features.device)] if self.size else features[:0]
        pool = torch.cat([stored, F.normalize(features, dim=1)])
        removed = torch.tensor(most_redundant(pool, self.size + n - self.capacity), dtype=torch.long)
        freed = torch.cat([by_age[removed[removed < self.size]], torch.arange(self.size, self.capacity)])
        incoming_kept = torch.ones(n, dtype=torch.bool)
        incoming_kept[removed[removed >= self.size] - self.size] = False
        out = torch.full((n,), -1, dtype=torch.long)
        out[incoming_kept] = freed.sort().values
        return out

    def stored(self, slots: torch.Tensor, incoming: torch.Tensor, features: torch.Tensor | None) -> None:
        if self.features is None:
            self.features = torch.zeros((self.capacity, features.size(1)), device=features.device)
        self.features[slots.to(self.features.device)] = F.normalize(features, dim=1)
        self.inserted[slots] = self.num_seen + incoming

    def observe(self, slots: torch.Tensor, features: torch.Tensor) -> None:
        slots = slots.to(self.features.device)
        blended = (1 - POLYAK_GAMMA) * self.features[slots] + POLYAK_GAMMA * F.normalize(features.float(), dim=1)
        self.features[slots] = F.normalize(blended, dim=1)

    def extra_state(self) -> dict:
        features = None if self.features is None else self.features[: self.size].to("cpu", copy=True)
        return {"features": features, "inserted": self.inserted[: self.size].clone()}

    def load_extra_state(self, state: dict) -> None:
        self.features = None
        if state["features"] is not None:
            self.features = torch.zeros((self.capacity, state["features"].size(1)))
            self.features[: self.size] = state["features"]
        self.inserted = torch.full((self.capacity,), -1, dtype=torch.long)
        self.inserted[: self.size] = state["inserted"]
