"""Counting the reads of tensor values into Python (``.item()``, ``.cpu()``, ``bool(t)``, ...).

On a GPU each such read of a device tensor waits for every kernel queued before it (a host sync). A CPU run has no
syncs to profile, so the online step's syncs are counted here by the reads themselves, attributed to the package
whose code made them. Reads of tensors that live on the host in a GPU run too (the augmentation's parameters, drawn
on the CPU: the jitter order per view) are counted as well, under their own origin, ``augment_parameters``.
"""

import contextlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch

READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")
_PACKAGE = Path(__file__).resolve().parents[1]
_ROOTS = {"augment_parameters": _PACKAGE / "data" / "augment.py", "solo_ossl": _PACKAGE}


def _origin(filename: str) -> str:
    path = Path(filename)
    for name, root in _ROOTS.items():
        if path.is_relative_to(root):
            return name
    for part in reversed(path.parts):
        if part in ("kornia", "torch", "lightning", "torchmetrics", "numpy"):
            return part
    return "other"


@contextlib.contextmanager
def count_host_reads() -> Iterator[Counter]:
    """Within the block, count every tensor-to-host read as ``counts[(origin, read)]`` (``origin`` the package of
    the calling code: ``solo_ossl``, ``augment_parameters``, ``kornia``, ``torch``, ...)."""
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def counted(name, read):
        def wrapper(self, *args, **kwargs):
            counts[(_origin(sys._getframe(1).f_code.co_filename), name)] += 1
            return read(self, *args, **kwargs)

        return wrapper

    for name, read in originals.items():
        setattr(torch.Tensor, name, counted(name, read))
    try:
        yield counts
    finally:
        for name, read in originals.items():
            setattr(torch.Tensor, name, read)


def reads_by_origin(counts: Counter) -> dict[str, int]:
    out: Counter = Counter()
    for (origin, _), n in counts.items():
        out[origin] += n
    return dict(out)
