"""What a run prints: progress, results and real warnings, without Lightning's repeated notices."""

import logging
import warnings

# Advertisements and notices Lightning repeats on every run or checkpoint, and an internal deprecation of its own.
NOISE = (
    "💡 Tip:",
    "Loading `train_dataloader` to estimate number of stepping batches",
)
NOISY_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # lightning/pytorch/utilities/_pytree.py
    r"You defined a `validation_step` but have no `val_dataloader`",  # online runs validate through the kNN monitor
    # A shard stream's workers take whole stream batches in turn, so its length holds (solo_ossl.data.shards).
    r"Your `IterableDataset` has `__len__` defined",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOISE)


# Linear evaluation keeps the backbone it freezes in eval mode on purpose (lightning/pytorch/loops/fit_loop.py).
FROZEN_BACKBONE_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"


def quiet_lightning(frozen_backbone: bool = False) -> None:
    """Drop ``NOISE`` from Lightning's log handlers and ``NOISY_WARNINGS`` from the warnings (idempotent); with
    ``frozen_backbone``, also Lightning's warning about modules in eval mode (a frozen backbone is one)."""
    for handler in logging.getLogger("lightning.pytorch").handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())
    for message in NOISY_WARNINGS + ((FROZEN_BACKBONE_WARNING,) if frozen_backbone else ()):
        warnings.filterwarnings("ignore", message=message)
