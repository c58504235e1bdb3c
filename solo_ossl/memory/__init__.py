"""Replay memories. A policy is one file with a ``ReplayMemory`` subclass and an entry in ``POLICIES``."""

from solo_ossl.memory.base import FeatureFn, ReplayMemory
from solo_ossl.memory.fifo import FifoMemory
from solo_ossl.memory.minred import MinRedMemory, most_redundant
from solo_ossl.memory.random_replacement import RandomReplacementMemory
from solo_ossl.memory.reservoir import ReservoirMemory
from solo_ossl.utils.errors import SoloOsslError

POLICIES: dict[str, type[ReplayMemory]] = {
    "reservoir": ReservoirMemory,
    "random": RandomReplacementMemory,
    "fifo": FifoMemory,
    "minred": MinRedMemory,
}


def build_memory(capacity: int, policy: str = "reservoir", seed: int = 0) -> ReplayMemory:
    if policy not in POLICIES:
        raise SoloOsslError(f"unknown memory policy '{policy}' (choose {', '.join(POLICIES)})")
    return POLICIES[policy](capacity, seed)


__all__ = [
    "POLICIES",
    "FeatureFn",
    "FifoMemory",
    "MinRedMemory",
    "RandomReplacementMemory",
    "ReplayMemory",
    "ReservoirMemory",
    "build_memory",
    "most_redundant",
]
