"""One stream batch of the online algorithm (paper Sec. 4, Fig. 2), Lightning-free: a fresh one-cycle schedule
(SLCLRS) and anchor, then N local steps, each on the stream batch and a fresh memory draw, freshly augmented, of
which the selection rule keeps k; the stream batch enters the memory after its N steps.

``train_stream_batch`` is what the online regime runs as one Lightning training step, and what the throughput
benchmark's bare loop runs without Lightning.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from solo_ossl.modules.frozen import batch_stats_without_update
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.rals import expand_groups
from solo_ossl.online.steplog import StepValues, StreamBatchLog
from solo_ossl.utils.distributed import average_gradients, gather_sizes, gather_with_grad


def join_candidates(stream: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """A step's candidates: the stream samples, then the memory draw's (an empty memory adds none)."""
    return torch.cat([stream, memory]) if len(memory) else stream


@dataclass
class Choice:
    """The selection rule's choice at one local step: the kept sample indices (None: all), the stream's share among
    them and the stream units' mean current loss (device scalars; NaN where not measured), and the rule's own
    scores where it computed them."""

    kept: torch.Tensor | None
    share: torch.Tensor
    stream_unit_loss: torch.Tensor
    current: torch.Tensor | None = None
    anchor: torch.Tensor | None = None


def select_candidates(learner: OnlineLearner, method, step: int, v1, v2, n_stream: int, not_measured) -> Choice:
    """Apply the learner's selection rule to the candidates' views ``v1``, ``v2`` (the first ``n_stream`` are the
    stream's); with fewer candidates than k (memory still filling) all are trained on."""
    candidates = v1.size(0)
    share = torch.full((), n_stream / candidates, device=v1.device)  # a fill: no copy from the host
    if learner.selection is None:
        return Choice(None, share, not_measured)
    units = candidates // method.group_size
    k_units = min(learner.k_units(method.group_size), units)
    if k_units == units:
        return Choice(None, share, not_measured)
    selected = learner.selection.select(method, step, v1, v2, k_units)
    learner.images_forward += selected.images_forward
    current = selected.current
    unit_loss = not_measured if current is None else current[: n_stream // method.group_size].mean()
    kept = expand_groups(selected.units, method.group_size)
    return Choice(kept, (kept < n_stream).float().mean(), unit_loss, current, selected.anchor)


def optimize_step(
    method,
    optimizer,
    v1: torch.Tensor,
    v2: torch.Tensor,
    targets: torch.Tensor,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    sync_gradients: Callable[[], None] | None = None,
    sizes: list[int] | None = None,
) -> tuple[torch.Tensor, dict, dict]:
    """One optimizer step on the kept views: the method's SSL loss over the global batch plus the online classifier
    on detached features. Returns the SSL loss (on the device) and this process's outputs of both views.
    ``backward`` is Lightning's ``manual_backward`` in a run (precision plugin), plain autograd in the bare loop;
    ``sync_gradients`` averages the gradients over processes; ``sizes``: every process's number of kept samples
    where they differ (RALS's global choice), so that the classifier's mean is over the global batch too."""
    out1, out2 = method(v1), method(v2)
    loss = method.global_ssl_loss(out1, out2, sizes)
    feats = [out1["feats"], out2["feats"]]
    if sizes is not None:  # unequal shares: a mean of the per-process means would weigh samples unequally
        feats, targets = [gather_with_grad(f.detach(), sizes) for f in feats], gather_with_grad(targets, sizes)
    class_loss, _ = method.classifier_loss(feats, targets)
    optimizer.zero_grad()
    backward(loss + class_loss)
    if sync_gradients is not None:
        sync_gradients()
    optimizer.step()
    return loss, out1, out2


def stream_source(method, indexes, stream_x, device):
    """The stream batch as the augmentation takes it, the augmentation, where memory samples go, and how the next
    step's candidates are announced ahead. DALI decodes file indices: they stay on the host (read back once here),
    and its pipelines decode announced candidates while the current step trains."""
    augment = method.augment
    if hasattr(augment, "prefetch"):
        views = functools.partial(augment, device=device)
        return indexes.cpu(), views, torch.device("cpu"), functools.partial(augment.prefetch, device=device)
    return stream_x, augment, device, lambda candidates: None


@torch.no_grad()
def probe_loss(learner: OnlineLearner, method, views: list[torch.Tensor]) -> torch.Tensor:
    """SSL loss of the stream batch on fixed views, under the weights just updated."""
    with batch_stats_without_update(method):
        loss = method.global_ssl_loss(method(views[0]), method(views[1]))
    learner.images_forward += 2 * views[0].size(0)
    return loss


def observe_memory(learner: OnlineLearner, draw, kept: torch.Tensor | None, n_stream: int, out1, out2) -> None:
    """Tell a feature-keeping memory (MinRed) the features of its samples that this step trained on (host reads:
    such a memory only)."""
    if not learner.memory.needs_features or not len(draw.slots):
        return
    rows = torch.arange(n_stream + len(draw.slots), device=out1["z"].device) if kept is None else kept
    trained = (rows >= n_stream).nonzero().squeeze(1)  # rows of the trained batch that came from the memory
    z = (out1["z"][trained] + out2["z"][trained]).detach()
    learner.memory.observe(draw.slots[(rows[trained] - n_stream).cpu()], z)


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
    (step, choice, memory draw, the candidates' and the trained targets, loss) for instrumentation."""
    indexes, stream_x, stream_y = batch
    device = stream_y.device
    stream, augment, samples_device, prefetch = stream_source(method, indexes, stream_x, device)
    if learner.selection is not None and len(stream) % method.group_size:
        # A stream batch short of unreadable images (data.on_bad_image=skip) trains on its whole selection groups;
        # all of it still enters the memory.
        whole = len(stream) - len(stream) % method.group_size
        stream, stream_y = stream[:whole], stream_y[:whole]
    n_steps = learner.plan_stream_batch()
    torch_optimizer = getattr(optimizer, "optimizer", optimizer)  # Lightning wraps it
    schedule = learner.stream_batch_schedule(torch_optimizer, n_steps, method.cfg.optimizer.classifier_lr)
    if learner.selection is not None:
        learner.selection.start_stream_batch(method)  # the anchor: the model as this stream batch arrives
    log = StreamBatchLog(learner, n_steps, device)
    probe_views = augment(stream) if learner.cfg.probe_stream_loss else None
    sync = functools.partial(average_gradients, list(method.parameters())) if learner.world > 1 else None
    draw = learner.draw_memory(method.group_size, device, samples_device)
    for step in range(n_steps):
        candidates, targets = join_candidates(stream, draw.x), join_candidates(stream_y, draw.y)
        v1, v2 = augment(candidates)
        if step + 1 < n_steps:  # the next draw does not depend on the model: DALI decodes it during this step
            next_draw = learner.draw_memory(method.group_size, device, samples_device)
            prefetch(join_candidates(stream, next_draw.x))
        choice = select_candidates(learner, method, step, v1, v2, len(stream), log.not_measured)
        candidate_targets = targets
        if choice.kept is not None:
            v1, v2, targets = v1[choice.kept], v2[choice.kept], targets[choice.kept]
        log.schedule(torch_optimizer.param_groups[0])
        # Shares differ only under a global choice by score: then the step needs every process's count (a host read).
        shares_differ = choice.kept is not None and learner.selection.shares_may_differ
        sizes = gather_sizes(v1.size(0), device) if shares_differ else None
        loss, out1, out2 = optimize_step(method, optimizer, v1, v2, targets, backward, sync, sizes)
        method.after_optimizer_step(learner.local_steps, learner.total_local_steps)
        learner.local_steps += 1
        schedule.step()
        learner.images_backward += 2 * v1.size(0)
        learner.images_forward += 2 * v1.size(0)
        observe_memory(learner, draw, choice.kept, len(stream), out1, out2)
        probe = probe_loss(learner, method, probe_views) if probe_views is not None else log.not_measured
        log.step(loss, choice.share, choice.stream_unit_loss, probe, candidates.size(0), v1.size(0))
        if on_step is not None:
            on_step(
                dict(
                    step=step,
                    choice=choice,
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


def train_stream_batch(
    learner: OnlineLearner,
    method,
    optimizer,
    batch,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    on_step: Callable[[dict], None] | None = None,
) -> tuple[StreamBatchLog, StepValues]:
    """One stream batch: its N local steps, then the host copy of their values, read once; a loss that is not
    finite stops the run there, naming its local step, before the memory (or a checkpoint) takes the stream batch.
    Then the stream batch enters the memory. Returns the log and the values."""
    log = run_local_steps(learner, method, optimizer, batch, backward, on_step)
    values = log.finish()
    indexes, stream_x, stream_y = batch
    learner.add_to_memory(method, indexes, stream_x, stream_y)
    return log, values
