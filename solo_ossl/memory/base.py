"""Replay memory of raw samples (uint8 images or dataset indices), with its own random generator.

The samples live on the device they are added from: uint8 images on the training GPU (CIFAR-100 at 10,000 images
is 30 MB), so that the memory batch of every local step is drawn there without a host-to-device copy; dataset
indices on the CPU, where the loader reads the files. Slots and draws come from a CPU generator, so a run's
memory is the same on any device.

A policy (one file each, registered in ``solo_ossl.memory.POLICIES``) decides only where incoming samples go:
``slots`` maps them to slots or -1. A policy that needs the samples' features (MinRed) says so with
``needs_features``; the caller then passes a function that computes them with the current model, and reports the
features of stored samples it trains on to ``observe``.
"""

from collections.abc import Callable

import torch

from solo_ossl.utils.errors import SoloOsslError

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


class ReplayMemory:
    """Fixed-capacity buffer with uniform retrieval without replacement. Floating-point data is refused: augmented
    float images would cost 4x the memory and go stale."""

    policy = ""
    needs_features = False

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise SoloOsslError(f"memory capacity must be at least 1, got {capacity} (online.memory.capacity)")
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed)
        self.data: torch.Tensor | None = None
        self.labels = torch.full((capacity,), -1, dtype=torch.long)
        self.size = 0
        self.num_seen = 0

    def __len__(self) -> int:
        return self.size

    # ---- what a policy defines -------------------------------------------------------------------------
    def slots(self, n: int, features: torch.Tensor | None) -> torch.Tensor:
        """Target slot of each of ``n`` incoming samples (long, on the host), -1 where the sample is not stored.
        Several samples may target one slot: the later one wins, as in a sequential loop. ``features`` are the
        incoming samples' features where ``needs_features``."""
        raise NotImplementedError

    def stored(self, slots: torch.Tensor, incoming: torch.Tensor, features: torch.Tensor | None) -> None:
        """Called after the incoming samples at positions ``incoming`` (of the added batch) were written to ``slots``,
        with their ``features`` where ``needs_features``."""

    def observe(self, slots: torch.Tensor, features: torch.Tensor) -> None:
        """Features of stored samples (``slots``, as drawn by ``sample_slots``) from a training pass."""

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ---- shared ----------------------------------------------------------------------------------------
    def add(self, x: torch.Tensor, y: torch.Tensor | None = None, features: FeatureFn | None = None) -> None:
        if x.is_floating_point():
            raise SoloOsslError("ReplayMemory stores raw uint8 images or integer indices, not float tensors")
        x = x.detach()
        n = x.size(0)
        if self.data is None:
            self.data = torch.zeros((self.capacity, *x.shape[1:]), dtype=x.dtype, device=x.device)
        elif x.shape[1:] != self.data.shape[1:] or x.dtype != self.data.dtype:
            raise SoloOsslError(
                f"memory holds {self.data.dtype} {tuple(self.data.shape[1:])} samples, got {x.dtype} {tuple(x.shape[1:])}"
            )
        if self.data.device != x.device:  # a resumed memory (loaded on the CPU) joins the training device
            self.data = self.data.to(x.device)
        self.labels = self.labels.to(x.device)
        feats = None
        if self.needs_features:
            if features is None:
                raise SoloOsslError(f"the {self.policy} memory needs the samples' features: pass features=")
            feats = features(x).detach().float()
        slots = self.slots(n, feats)
        order = torch.arange(n)
        winner = torch.full((self.capacity,), -1, dtype=torch.long)
        winner.scatter_reduce_(0, slots.clamp(min=0), torch.where(slots >= 0, order, -1), reduce="amax")
        kept = ((slots >= 0) & (winner[slots.clamp(min=0)] == order)).nonzero().squeeze(1)  # on the host
        # Integer indices (a boolean mask on a GPU would sync to count its elements), copied without waiting.
        on_device = kept.to(x.device, non_blocking=True)
        self.data[slots[kept]] = x[on_device]
        if y is not None:
            self.labels[slots[kept]] = y.detach().to(self.labels.device).long()[on_device]
        self.stored(slots[kept], kept, None if feats is None else feats[kept.to(feats.device)])
        self.num_seen += n
        self.size = min(self.capacity, self.size + n)

    def sample_slots(self, n: int) -> torch.Tensor:
        """``min(n, len(self))`` slots drawn uniformly without replacement (on the host)."""
        if self.data is None or n <= 0:
            return torch.empty(0, dtype=torch.long)
        return torch.randperm(self.size, generator=self.generator)[: min(n, self.size)]

    def take(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples and labels in ``slots``."""
        if self.data is None:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        idx = slots.to(self.data.device, non_blocking=True)  # without waiting for the device's queue
        return self.data[idx], self.labels[idx]

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``min(n, len(self))`` stored samples drawn uniformly without replacement, and their labels."""
        return self.take(self.sample_slots(n))

    def state_dict(self) -> dict:
        return {
            "capacity": self.capacity,
            "policy": self.policy,
            "data": None if self.data is None else self.data[: self.size].to("cpu", copy=True),
            "labels": self.labels[: self.size].to("cpu", copy=True),
            "size": self.size,
            "num_seen": self.num_seen,
            "generator": self.generator.get_state(),
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["policy"] != self.policy:
            raise SoloOsslError(
                f"saved memory has capacity {state['capacity']}/{state['policy']}, this run "
                f"{self.capacity}/{self.policy}: resume with the same online.memory settings"
            )
        self.size, self.num_seen = state["size"], state["num_seen"]
        self.data = None
        if state["data"] is not None:
            self.data = torch.zeros((self.capacity, *state["data"].shape[1:]), dtype=state["data"].dtype)
            self.data[: self.size] = state["data"]
        self.labels = torch.full((self.capacity,), -1, dtype=torch.long)
        self.labels[: self.size] = state["labels"]
        self.generator.set_state(state["generator"])
        self.load_extra_state(state)
