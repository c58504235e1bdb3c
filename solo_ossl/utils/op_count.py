"""Counting the aten ops a call dispatches: at 32 px each is a kernel launch or host work on a GPU, so the count is
the CPU-measurable proxy for a GPU step's launch cost (issue 42)."""

from collections import Counter
from collections.abc import Callable

from torch.utils._python_dispatch import TorchDispatchMode


class CountOps(TorchDispatchMode):
    """Counts every aten op dispatched inside the ``with`` block, by name (``.ops``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_aten_ops(call: Callable[[], object]) -> int:
    with CountOps() as counter:
        call()
    return sum(counter.ops.values())
