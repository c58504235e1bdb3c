import torch

from solo_ossl.memory.base import ReplayMemory


class RandomReplacementMemory(ReplayMemory):
    """Every new sample is stored, in a uniformly random slot once the memory is full (the newest task then holds
    about 63% of the memory); the paper's "simple random sampling" fits it too, kept for comparison."""

    policy = "random"

    def slots(self, n: int, features: torch.Tensor | None) -> torch.Tensor:
        free = torch.arange(self.size, self.size + n)
        random_slot = torch.randint(self.capacity, (n,), generator=self.generator)
        return torch.where(free < self.capacity, free, random_slot)
