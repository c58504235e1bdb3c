import torch

from solo_ossl.memory.base import ReplayMemory


class ReservoirMemory(ReplayMemory):
    """Every sample seen so far is in the memory with equal probability (Vitter's algorithm R): a uniform sample of
    the whole stream, about a quarter per task after tasks 2-5."""

    policy = "reservoir"

    def slots(self, n: int, features: torch.Tensor | None) -> torch.Tensor:
        # Sample i (0-based over the stream) goes to slot i while there is room, else to a uniform j in [0, i], kept
        # only if j < capacity.
        seen = torch.arange(self.num_seen, self.num_seen + n)
        j = (torch.rand(n, generator=self.generator, dtype=torch.float64) * (seen + 1)).long()
        return torch.where(seen < self.capacity, seen, torch.where(j < self.capacity, j, -1))
