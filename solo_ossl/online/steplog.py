"""Bookkeeping of one stream batch: the per-step values (kept on the device), the lr and momentum applied, sizes and
time; one host read after the N steps; the rows of ``online_steps.csv`` and the logged metrics. It returns values
and advances no state (``OnlineLearner.record_stream_batch`` and ``take_stream_batch`` do).

On a GPU each read of a device value inside the N steps would wait for the queued kernels, so they are read once,
after the N steps."""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from solo_ossl.utils.distributed import all_reduce_
from solo_ossl.utils.errors import check_finite_steps

# stream_unit_loss: mean per-unit loss of the stream samples under the current model, from the RALS scoring pass
# (before the step); unlike "loss" it is not biased by which samples were selected. Empty without scoring, and at
# local step 0, where RALS selects at random without scoring.
# stream_probe_loss: with online.probe_stream_loss, the stream batch's loss on fixed views after the step.
# heldout_probe_loss: with online.probe_heldout, the held-out set's loss on fixed views after the step.
STEP_COLUMNS = [
    "stream_batch",
    "step",
    "loss",
    "lr",
    "momentum",
    "selected",
    "stream_selected_ratio",
    "stream_unit_loss",
    "stream_probe_loss",
    "heldout_probe_loss",
]


@dataclass
class StepValues:
    """One stream batch's per-local-step values on the host (each ``[N]``, the mean over processes): the SSL loss, the
    stream's share among the trained samples, and the stream units' scored loss and probe loss (NaN where not
    measured; see ``STEP_COLUMNS``)."""

    loss: torch.Tensor
    share: torch.Tensor
    stream_unit_loss: torch.Tensor
    stream_probe_loss: torch.Tensor
    heldout_probe_loss: torch.Tensor


class StreamBatchLog:
    def __init__(self, learner, n_steps: int, device: torch.device) -> None:
        self.n_steps, self.world, self.position = n_steps, learner.world, learner.position
        self.clock = learner.clock
        self.start = learner.clock()
        self.counted_before = (learner.images_forward, learner.images_backward)
        self.not_measured = torch.full((), float("nan"), device=device)
        self.per_step: list[torch.Tensor] = []
        self.lr_momentum: list[tuple[float, float]] = []
        self.sizes: list[int] = []
        self.candidates = 0
        self.seconds = 0.0

    def schedule(self, group: dict) -> None:
        self.lr_momentum.append((group["lr"], group["momentum"]))

    def step(self, loss, selected, probes, candidates: int, trained: int, stream_units: int) -> None:
        """A local step's SSL ``loss``, its selection (the stream's share, the first ``stream_units`` units' scored
        loss), the probe losses (stream, held-out), and its numbers of candidates and of trained samples."""
        unit_loss = selected.stream_unit_loss(stream_units, self.not_measured)
        values = [loss.detach().float(), selected.share, unit_loss, *(probe.float() for probe in probes)]
        self.per_step.append(torch.stack(values))
        self.candidates += candidates
        self.sizes.append(trained)

    def finish(self) -> StepValues:
        """The host copy of the per-step values (one read of the device), after the finiteness check; the stream
        batch's seconds."""
        stacked = torch.stack(self.per_step)  # one tensor [N, 5]: one reduction and one copy for all of them
        if self.world > 1:
            all_reduce_(stacked, mean=True)
        values = StepValues(*stacked.cpu().unbind(1))
        check_finite_steps(values.loss, lambda step: f"stream batch {self.position}, local step {step}")
        self.seconds = self.clock() - self.start
        return values

    def rows(self, values: StepValues) -> list[list]:
        """The stream batch's rows of ``online_steps.csv``."""
        optional = (values.stream_unit_loss, values.stream_probe_loss, values.heldout_probe_loss)
        measured = zip(*(v.tolist() for v in optional), strict=True)
        return [
            [self.position, step, loss, lr, momentum, size * self.world, share]
            + ["" if math.isnan(v) else v for v in extra]
            for step, (loss, share, extra, (lr, momentum), size) in enumerate(
                zip(values.loss.tolist(), values.share.tolist(), measured, self.lr_momentum, self.sizes, strict=True)
            )
        ]

    def metrics(self, values: StepValues, learner) -> dict[str, float]:
        """The stream batch's logged metrics (after ``OnlineLearner.record_stream_batch``)."""
        losses, ratios = values.loss.tolist(), values.share.tolist()
        throughput = self.candidates / self.seconds
        return {
            "loss": sum(losses) / len(losses),
            "loss_first_step": losses[0],
            "loss_last_step": losses[-1],
            "lr": self.lr_momentum[-1][0],
            "momentum": self.lr_momentum[-1][1],
            "stream_selected_ratio_last_step": ratios[-1],
            "stream_selected_ratio_mean100": sum(learner.recent_ratios) / len(learner.recent_ratios),
            "images_forward": float(learner.images_forward),
            "images_backward": float(learner.images_backward),
            "memory_size": float(len(learner.memory)),
            "local_steps": float(self.n_steps),
            "img_per_s": throughput,
        }


def append_step_rows(path: Path, rows: list[list]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(STEP_COLUMNS)
        writer.writerows(rows)


def truncate_step_rows(path: Path, position: int) -> None:
    """Drop rows of stream batches from ``position`` on (a resumed run is about to train them again)."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) < position]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)
