"""One exception type for problems a user can fix, and a wrapper that prints them as one line."""

import functools
import math
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


class SoloOsslError(Exception):
    """Bad input: wrong path, config key, checkpoint, data or a diverged loss. The message says what to do."""


class Preempted(Exception):  # noqa: N818 - a run stopped by a signal, not an error of the program
    """A run stopped by SIGTERM (what a cluster sends before it preempts a job), after saving its checkpoint. The
    message says where it stopped and how it continues; the process exits with 143 (128 + SIGTERM), never 0, so that
    neither a scheduler nor the comparison runner takes it for a finished run."""


PREEMPTED_EXIT_CODE = 143


def user_message(error: SoloOsslError) -> str:
    """The error's own message. An error raised in a DataLoader worker reaches the main process re-raised with the
    worker's whole traceback as its message ("Caught SoloOsslError in DataLoader worker process 1. Original
    Traceback ..."), which ends with the original message."""
    message = str(error)
    if "Original Traceback" in message:
        message = message.rstrip().rsplit("SoloOsslError: ", 1)[-1]
    return message.strip()


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Run ``main``; a user error becomes ``error: <message>`` on stderr and exit code 2, not a traceback (also one
    raised in a DataLoader worker)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SoloOsslError as e:
            print(f"error: {user_message(e)}", file=sys.stderr)
        except Preempted as e:
            print(f"stopped: {e}", file=sys.stderr)
            sys.exit(PREEMPTED_EXIT_CODE)
        sys.exit(2)

    return wrapper


def check_finite(loss: torch.Tensor | float, where: str) -> None:
    value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
    if not math.isfinite(value):
        raise SoloOsslError(
            f"the loss became {value} at {where}: training diverged; lower the learning rate "
            "(optimizer.lr or online.max_lr) or use ++precision=32, then resume from the last checkpoint"
        )


def check_finite_steps(losses: torch.Tensor, where: Callable[[int], str]) -> None:
    """``check_finite`` for the host-side losses of consecutive steps, naming the first step that is not finite
    (``where(step)``). The losses are the fp32 values, not fp16's scaled ones: a step that fp16's GradScaler skips
    for overflowing gradients has a finite loss and does not stop the run."""
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        step = int(bad[0, 0])
        check_finite(losses[step], where(step))
