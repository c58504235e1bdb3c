import torch

from solo_ossl.memory.base import ReplayMemory


class FifoMemory(ReplayMemory):
    """First in, first out: the newest ``capacity`` samples of the stream (a ring buffer)."""

    policy = "fifo"

    def slots(self, n: int, features: torch.Tensor | None) -> torch.Tensor:
        return torch.arange(self.num_seen, self.num_seen + n) % self.capacity
