"""One stream batch of the online algorithm (paper Sec. 4, Fig. 2), Lightning-free: a fresh one-cycle schedule
(SLCLRS) and anchor, then N local steps, each on the stream batch and a fresh memory draw, freshly augmented, of
which the selection rule keeps k; then the memory takes the stream batch.

``train_stream_batch`` is what the online regime runs as one Lightning training step, and what the throughput
benchmark's bare loop runs without Lightning. The pieces it composes live in their own files: the learner's state
(``learner``), the schedule (``slclrs``), the selection (``selection``), what a step does with the model (``step``)
and the bookkeeping (``steplog``).
"""

import functools
from collections.abc import Callable

import torch

from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.selection import select_candidates, whole_groups
from solo_ossl.online.slclrs import stream_batch_schedule
from solo_ossl.online.step import heldout_probe_loss, memory_features, optimize_step, probe_loss
from solo_ossl.online.steplog import StepValues, StreamBatchLog
from solo_ossl.utils.distributed import average_gradients, gather_sizes


def join_candidates(stream: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """A step's candidates: the stream samples, then the memory draw's (an empty memory adds none)."""
    return torch.cat([stream, memory]) if len(memory) else stream


def train_stream_batch(
    learner: OnlineLearner,
    method,
    optimizer,
    batch,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    on_step: Callable[[dict], None] | None = None,
) -> tuple[StreamBatchLog, StepValues]:
    """One stream batch (paper Fig. 2): its N local steps, then its end. Returns the log and the values."""
    log = run_local_steps(learner, method, optimizer, batch, backward, on_step)
    return log, end_stream_batch(learner, batch, log, functools.partial(memory_features, learner, method))


def run_local_steps(
    learner: OnlineLearner,
    method,
    optimizer,
    batch,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    on_step: Callable[[dict], None] | None = None,
) -> StreamBatchLog:
    """The N local steps of one stream batch ``batch`` = (indexes, images, labels), without reading a device value
    on the host; their values stay in the returned log. ``on_step``, if given, receives each local step's tensors
    (step, selection, memory draw, the candidates' and the trained targets, loss) for instrumentation."""
    # A stream batch short of unreadable images (data.on_bad_image=skip) trains on its whole selection units; all of
    # it still enters the memory.
    whole = whole_groups(len(batch[0]), learner.unit)
    indexes, stream_x, stream_y = (t[:whole] for t in batch)
    device = stream_y.device
    rule, k_units = learner.selection, learner.k_units
    n_steps = learner.plan_stream_batch()
    torch_optimizer = getattr(optimizer, "optimizer", optimizer)  # Lightning wraps it
    schedule = stream_batch_schedule(torch_optimizer, n_steps, learner.cfg, learner.classifier_lr)  # SLCLRS
    log = StreamBatchLog(learner, n_steps, device)
    sync = functools.partial(average_gradients, list(method.parameters())) if learner.world > 1 else None
    stream, augment, samples_device, prefetch = stream_source(method, indexes, stream_x, device)
    if rule is not None:
        rule.start_stream_batch(method)  # the anchor: the model as this stream batch arrives
    probe_views = augment(stream) if learner.cfg.probe_stream_loss else None
    draw = learner.draw_memory(device, samples_device)
    for step in range(n_steps):
        candidates, targets = join_candidates(stream, draw.x), join_candidates(stream_y, draw.y)
        v1, v2 = augment(candidates)
        if step + 1 < n_steps:  # the next draw does not depend on the model: DALI decodes it during this step
            next_draw = learner.draw_memory(device, samples_device)
            prefetch(join_candidates(stream, next_draw.x))
        selected = select_candidates(rule, k_units, method, step, v1, v2, len(stream))
        candidate_targets = targets
        if selected.kept is not None:
            v1, v2, targets = v1[selected.kept], v2[selected.kept], targets[selected.kept]
        log.schedule(torch_optimizer.param_groups[0])
        # Shares differ only under a global choice by score: then the step needs every process's count (a host read).
        shares_differ = selected.kept is not None and rule.shares_may_differ
        sizes = gather_sizes(v1.size(0), device) if shares_differ else None
        loss, out1, out2 = optimize_step(method, optimizer, v1, v2, targets, backward, sync, sizes)
        method.after_optimizer_step(learner.local_steps, learner.total_local_steps)
        learner.local_steps += 1
        schedule.step()
        learner.images_forward += selected.images_forward + 2 * v1.size(0)
        learner.images_backward += 2 * v1.size(0)
        probe = probe_loss(learner, method, probe_views) if probe_views is not None else log.not_measured
        heldout = log.not_measured if learner.heldout_images is None else heldout_probe_loss(learner, method, augment)
        learner.note_trained(draw, selected.kept, len(stream), out1, out2)
        log.step(loss, selected, (probe, heldout), candidates.size(0), v1.size(0), len(stream) // method.group_size)
        if on_step is not None:
            on_step(
                dict(
                    step=step,
                    selected=selected,
                    draw=draw,
                    candidate_targets=candidate_targets,
                    targets=targets,
                    n_stream=len(stream),
                    loss=loss,
                )
            )
        if step + 1 < n_steps:
            draw = next_draw
    return log


def end_stream_batch(learner: OnlineLearner, batch, log: StreamBatchLog, features: Callable) -> StepValues:
    """After the N local steps: the host copy of their values, read once (a loss that is not finite stops the run
    there, naming its local step, before the memory or a checkpoint takes the stream batch); the learner records
    the batch; the memory takes the stream batch (``features``: what a feature-keeping memory stores of it) and the
    position moves past it."""
    values = log.finish()
    learner.record_stream_batch(log, values)
    learner.take_stream_batch(batch, features)
    return values


def stream_source(method, indexes, stream_x, device):
    """The stream batch as the augmentation takes it, the augmentation, where memory samples go, and how the next
    step's candidates are announced ahead. DALI decodes file indices: they stay on the host (read back once here),
    and its pipelines decode announced candidates while the current step trains."""
    augment = method.augment
    if hasattr(augment, "prefetch"):
        views = functools.partial(augment, device=device)
        return indexes.cpu(), views, torch.device("cpu"), functools.partial(augment.prefetch, device=device)
    return stream_x, augment, device, lambda candidates: None
