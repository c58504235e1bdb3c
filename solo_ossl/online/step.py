"""The online training step: one Lightning batch = one stream batch, trained on for N local optimizer steps with
a fresh one-cycle schedule, replay memory and optionally RALS (paper Sec. 4, Fig. 2)."""

import collections
import csv
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from solo_ossl.methods.base import Regime
from solo_ossl.online.memory import ReplayMemory
from solo_ossl.online.rals import batch_stats_without_update, expand_groups
from solo_ossl.online.selection import build_selection
from solo_ossl.online.slclrs import slclrs
from solo_ossl.utils.device import capture_rng_states, restore_rng_states
from solo_ossl.utils.distributed import all_reduce_, average_gradients, check_replicas, gather_to_all
from solo_ossl.utils.errors import SoloOsslError, check_finite_steps

# stream_unit_loss: mean per-unit loss of the stream samples under the current model, from the RALS scoring pass
# (before the step); unlike "loss" it is not biased by which samples were selected. Empty without scoring, and at
# local step 0, where RALS selects at random without scoring.
# stream_probe_loss: with online.probe_stream_loss, the stream batch's loss on fixed views after the step.
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
]


def validate_sharding(online_cfg, group_size: int, world: int) -> None:
    """With ``world`` processes, the stream batch, the memory, its batch and k are split evenly over them (each
    process's share in whole selection groups)."""
    grouped = online_cfg.selection != "none"
    for what, size in (
        ("online.stream_batch_size", online_cfg.stream_batch_size),
        ("online.memory.capacity", online_cfg.memory.capacity),
        ("the memory batch (online.memory.batches x stream batch)", memory_batch_size(online_cfg)),
        *((("online.k", online_cfg.k),) if grouped else ()),
    ):
        unit = world * (group_size if grouped and what != "online.memory.capacity" else 1)
        if size % unit:
            raise SoloOsslError(
                f"{what} = {size} does not split over {world} processes"
                + (f" in whole groups of {group_size}" if unit != world else "")
                + f": make it a multiple of {unit}"
            )


def pct_start_for(online_cfg, steps: int) -> float:
    """SLCLRS's warm-up share for a stream batch of ``steps`` local steps."""
    return float(online_cfg.pct_start_by_steps.get(steps, online_cfg.pct_start))


def steps_within_budget(budget_s: float, step_s: float, pct_start: float) -> int:
    """Local steps of ``step_s`` seconds that fit in ``budget_s``: at least the fewest a one-cycle schedule
    accepts (``pct_start * N > 1``)."""
    fewest = math.floor(1 / pct_start) + 1
    return max(fewest, math.floor(budget_s / step_s))


def optimize_step(
    method,
    optimizer: torch.optim.Optimizer,
    v1: torch.Tensor,
    v2: torch.Tensor,
    targets: torch.Tensor,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    sync_gradients: Callable[[], None] | None = None,
) -> torch.Tensor:
    """One optimizer step on the kept views: the method's SSL loss plus the online classifier on detached features.
    Returns the SSL loss (on the device). ``backward`` is Lightning's ``manual_backward`` in a run (precision
    plugin), plain autograd in the benchmark's bare loop; ``sync_gradients`` averages them over processes."""
    out1, out2 = method(v1), method(v2)
    loss = method.ssl_loss(out1["z"], out2["z"])
    class_loss, _ = method.classifier_loss([out1["feats"], out2["feats"]], targets)
    optimizer.zero_grad()
    backward(loss + class_loss)
    if sync_gradients is not None:
        sync_gradients()
    optimizer.step()
    return loss


def join_candidates(stream: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """A step's candidates: the stream samples, then the memory draw's (an empty memory adds none)."""
    return torch.cat([stream, memory]) if len(memory) else stream


def memory_batch_size(online_cfg) -> int:
    return round(online_cfg.memory.batches * online_cfg.stream_batch_size)


class OnlineLearner(Regime):
    """The online regime around a method: memory, selection rule, stream position, step state, and the step that
    uses them. ``dataset`` is where memory samples stored as indices are read from; ``steps_csv`` receives a row per
    local step."""

    owns_step = True

    def __init__(self, online_cfg, dataset=None, steps_csv: Path | None = None) -> None:
        self.method = None
        self.cfg = online_cfg
        self.memory = ReplayMemory(online_cfg.memory.capacity, online_cfg.memory.policy, online_cfg.memory.seed)
        self.selection = build_selection(online_cfg.selection)
        self.position = 0  # stream batches completed
        self.rank, self.world = 0, 1  # this process's share of the stream, the memory and k (see ``shard``)
        self.dataset = dataset
        self.steps_csv = steps_csv
        self.pending_rng: dict | None = None
        self.pending_optimizer_state: dict | None = None
        self.pending_precision_state: dict = {}
        self.recent_ratios: collections.deque = collections.deque(maxlen=100)
        self.images_forward = 0  # image-views through the model, with or without gradient
        self.images_backward = 0  # image-views back-propagated
        self.clock = time.perf_counter  # seconds; a test's fake clock times the time-budget mode
        self.step_seconds: float | None = None  # running mean of the local step time (time-budget mode)

    def attach(self, method) -> None:
        super().attach(method)
        self.method = method
        method.automatic_optimization = False

    def checkpoint_state(self) -> dict:
        return {"online": self.sharded_state()}

    def shard(self, rank: int, world: int) -> None:
        """Process ``rank`` of ``world``: it trains on its part of every stream batch with its own memory shard
        (capacity / world, a generator seeded from online.memory.seed and the rank), draws its part of the memory
        batch and selects k / world units. Local selection needs no communication per step and keeps the per-process
        batches equal; a global top-k would gather every score each step."""
        if world == 1:
            return
        validate_sharding(self.cfg, self.method.group_size, world)
        self.rank, self.world = rank, world
        memory = self.cfg.memory
        self.memory = ReplayMemory(memory.capacity // world, memory.policy, memory.seed + rank)

    # ---- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "position": self.position,
            "memory": self.memory.state_dict(),
            "rng": capture_rng_states(self.method.device),
            "recent_ratios": list(self.recent_ratios),
            "images_forward": self.images_forward,
            "images_backward": self.images_backward,
            "step_seconds": self.step_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
        self.memory.load_state_dict(state["memory"])
        self.recent_ratios.extend(state["recent_ratios"])
        self.images_forward, self.images_backward = state["images_forward"], state["images_backward"]
        self.step_seconds = state.get("step_seconds")
        # Applied right before the next step, after Lightning's own start-up has drawn whatever it draws.
        self.pending_rng = state["rng"]

    def sharded_state(self) -> dict:
        """What a checkpoint holds: ``state_dict`` in one process; with several, every process's state (memory shard,
        generators, counters) gathered in rank order. A collective: every process calls it."""
        if self.world == 1:
            return self.state_dict()
        return {"world_size": self.world, "shards": gather_to_all(self.state_dict())}

    def resume_from(self, checkpoint: dict) -> None:
        """Restore a run saved mid-stream; the optimizer state is applied once Lightning has built it."""
        online = checkpoint["online"]
        saved_world = online.get("world_size", 1)
        if saved_world != self.world:
            raise SoloOsslError(
                f"the checkpoint was saved by {saved_world} process(es) and this run has {self.world}: each holds its "
                f"own memory shard, so resume with the same devices x num_nodes = {saved_world}"
            )
        self.method.load_state_dict(checkpoint["state_dict"])
        self.load_state_dict(online["shards"][self.rank] if self.world > 1 else online)
        self.pending_optimizer_state = checkpoint["optimizer_states"][0]
        # Lightning saves its precision plugin's state (fp16's GradScaler) under the plugin's class name.
        self.pending_precision_state = {k: v for k, v in checkpoint.items() if k.endswith("Precision")}

    def on_train_start(self) -> None:
        if self.pending_optimizer_state is not None:
            self.method.optimizers().optimizer.load_state_dict(self.pending_optimizer_state)
            self.pending_optimizer_state = None
        plugin = self.method.trainer.precision_plugin
        state = self.pending_precision_state.pop(type(plugin).__qualname__, None)
        if state:
            plugin.load_state_dict(state)
        self.pending_precision_state = {}

    # ---- the step --------------------------------------------------------------------------------------
    def _max_lrs(self, optimizer) -> list[float]:
        return [
            self.method.cfg.optimizer.classifier_lr if g.get("name") == "classifier" else self.cfg.max_lr
            for g in optimizer.param_groups
        ]

    def planned_steps(self) -> int:
        """N for the next stream batch: ``steps_per_batch``, or in the time-budget mode as many steps as fit."""
        if self.cfg.time_budget_s <= 0 or self.step_seconds is None:
            return self.cfg.steps_per_batch
        return steps_within_budget(self.cfg.time_budget_s, self.step_seconds, self.cfg.pct_start)

    def stream_batch_schedule(self, optimizer: torch.optim.Optimizer, steps: int | None = None):
        """SLCLRS: a fresh one-cycle lr/momentum schedule over this stream batch's N (``steps``) steps."""
        return slclrs(
            optimizer,
            steps or self.cfg.steps_per_batch,
            self._max_lrs(optimizer),
            pct_start=pct_start_for(self.cfg, steps or self.cfg.steps_per_batch),
            div_factor=self.cfg.div_factor,
            final_div_factor=self.cfg.final_div_factor,
            base_momentum=self.cfg.base_momentum,
            max_momentum=self.cfg.max_momentum,
        )

    def draw_memory(self, device: torch.device, samples_device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """A memory draw: the samples on ``samples_device`` (the host for file indices that DALI decodes), the
        labels on the training ``device``."""
        x, y = self.memory.sample(memory_batch_size(self.cfg) // self.world)
        if self.selection is not None:  # whole groups only
            keep = len(x) - len(x) % self.method.group_size
            x, y = x[:keep], y[:keep]
        if self.cfg.memory.store == "indices" and len(x):
            x = self.dataset.load(x)
        return x.to(samples_device, non_blocking=True), y.to(device, non_blocking=True)

    def training_step(self, batch) -> torch.Tensor:
        """One stream batch, the paper's loop (Fig. 2): a fresh one-cycle schedule (SLCLRS) and anchor, then N local
        steps, each on the stream batch and a fresh memory draw, freshly augmented, of which the selection rule keeps
        k; the stream batch enters the memory after its N steps. Bookkeeping is ``StreamBatchLog``'s."""
        self._restore_pending_rng()
        m = self.method
        indexes, stream_x, stream_y = batch
        device = stream_y.device
        stream, augment, samples_device, prefetch = self._stream_source(indexes, stream_x, device)
        n_steps = self.planned_steps()
        optimizer = m.optimizers()
        schedule = self.stream_batch_schedule(optimizer.optimizer, n_steps)
        if self.selection is not None:
            self.selection.start_stream_batch(m)
        log = StreamBatchLog(self, n_steps, device)
        probe_views = augment(stream) if self.cfg.probe_stream_loss else None
        memory_x, memory_y = self.draw_memory(device, samples_device)
        for step in range(n_steps):
            candidates, targets = join_candidates(stream, memory_x), join_candidates(stream_y, memory_y)
            v1, v2 = augment(candidates)
            if step + 1 < n_steps:  # the next draw does not depend on the model: DALI decodes it during this step
                next_memory = self.draw_memory(device, samples_device)
                prefetch(join_candidates(stream, next_memory[0]))
            kept, share, unit_loss = self.select_candidates(step, v1, v2, len(stream), log.not_measured)
            if kept is not None:
                v1, v2, targets = v1[kept], v2[kept], targets[kept]
            loss = self._optimize(optimizer, v1, v2, targets, log)
            schedule.step()
            probe = self._probe(probe_views) if probe_views is not None else log.not_measured
            log.step(loss, share, unit_loss, probe, candidates.size(0), v1.size(0))
            if step + 1 < n_steps:
                memory_x, memory_y = next_memory
        values = log.finish()
        self.memory.add(indexes.cpu() if self.cfg.memory.store == "indices" else stream_x, stream_y)
        log.publish(values)
        return values[-1, 0]

    def _restore_pending_rng(self) -> None:
        if self.pending_rng is not None:
            restore_rng_states(self.pending_rng, self.method.device)
            self.pending_rng = None

    def _stream_source(self, indexes, stream_x, device):
        """The stream batch as the augmentation takes it, the augmentation, where memory samples go, and how the
        next step's candidates are announced ahead. DALI decodes file indices: they stay on the host (read back once
        here), and its pipelines decode announced candidates while the current step trains."""
        augment = self.method.augment
        if hasattr(augment, "prefetch"):
            views = functools.partial(augment, device=device)
            return indexes.cpu(), views, torch.device("cpu"), functools.partial(augment.prefetch, device=device)
        return stream_x, augment, device, lambda candidates: None

    def select_candidates(self, step: int, v1, v2, n_stream: int, not_measured: torch.Tensor):
        """The selection rule's choice: (sample indices kept or None for all, the stream's share among them, the
        stream units' mean current loss where the rule computed it), the last two as device scalars."""
        m, candidates = self.method, v1.size(0)
        share = torch.full((), n_stream / candidates, device=v1.device)  # a fill: no copy from the host
        if self.selection is None:
            return None, share, not_measured
        units = candidates // m.group_size
        k_units = min(self.cfg.k // self.world // m.group_size, units)
        if k_units == units:  # with fewer candidates than k (memory still filling) all are trained on
            return None, share, not_measured
        choice = self.selection.select(m, step, v1, v2, k_units)
        self.images_forward += choice.images_forward
        unit_loss = not_measured if choice.current is None else choice.current[: n_stream // m.group_size].mean()
        kept = expand_groups(choice.units, m.group_size)
        return kept, (kept < n_stream).float().mean(), unit_loss

    def _optimize(self, optimizer, v1, v2, targets, log: "StreamBatchLog") -> torch.Tensor:
        log.schedule(optimizer.optimizer.param_groups[0])
        sync = functools.partial(average_gradients, self.method.parameters()) if self.world > 1 else None
        loss = optimize_step(self.method, optimizer, v1, v2, targets, self.method.manual_backward, sync)
        self.images_backward += 2 * v1.size(0)
        self.images_forward += 2 * v1.size(0)
        return loss

    def _to_host(self, per_step: list[torch.Tensor]) -> torch.Tensor:
        """The stream batch's one read of device values: ``[N, 4]`` (loss, stream share, stream unit loss, probe),
        averaged over the processes."""
        values = torch.stack(per_step)
        if self.world > 1:
            all_reduce_(values, mean=True)
        return values.cpu()

    @torch.no_grad()
    def _probe(self, views: list[torch.Tensor]) -> torch.Tensor:
        """SSL loss of the stream batch on fixed views, under the weights just updated."""
        m = self.method
        with batch_stats_without_update(m.backbone, m.projector):
            loss = m.ssl_loss(m(views[0])["z"], m(views[1])["z"])
        self.images_forward += 2 * views[0].size(0)
        return loss

    def _write_steps(self, rows: list[list]) -> None:
        if self.steps_csv is None or self.rank != 0:
            return
        new = not self.steps_csv.exists()
        with self.steps_csv.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(STEP_COLUMNS)
            writer.writerows(rows)

    def truncate_steps_csv(self) -> None:
        """Drop rows of stream batches after the resumed position (they are about to be trained again)."""
        if self.steps_csv is None or not self.steps_csv.exists() or self.rank != 0:
            return
        with self.steps_csv.open() as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) < self.position]
        with self.steps_csv.open("w", newline="") as f:
            csv.writer(f).writerows(kept)


class StreamBatchLog:
    """Bookkeeping of one stream batch: the per-step values (kept on the device), the lr/momentum used, sizes,
    counters and time; then one host read, the finiteness check, ``online_steps.csv`` and the logged metrics.

    On a GPU each read of a device value inside the N steps would wait for the queued kernels, so they are read once,
    after the N steps; a loss that is not finite still stops the run (naming its step) before the memory and the
    checkpoint take the stream batch."""

    def __init__(self, learner: OnlineLearner, n_steps: int, device: torch.device) -> None:
        self.learner, self.n_steps = learner, n_steps
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

    def step(self, loss, share, unit_loss, probe, candidates: int, trained: int) -> None:
        self.per_step.append(torch.stack([loss.detach().float(), share, unit_loss, probe.float()]))
        self.candidates += candidates
        self.sizes.append(trained)

    def finish(self) -> torch.Tensor:
        """The host copy of the per-step values ``[N, 4]`` (over all processes), after the finiteness check."""
        learner = self.learner
        values = learner._to_host(self.per_step)
        if learner.world > 1:  # counters and throughput over all processes
            before = self.counted_before
            local = [learner.images_forward - before[0], learner.images_backward - before[1], self.candidates]
            forward, backward, self.candidates = all_reduce_(torch.tensor(local, dtype=torch.float64)).tolist()
            learner.images_forward, learner.images_backward = before[0] + int(forward), before[1] + int(backward)
        check_finite_steps(values[:, 0], lambda step: f"stream batch {learner.position}, local step {step}")
        self.seconds = learner.clock() - self.start
        if learner.cfg.time_budget_s > 0:
            measured = self.seconds / self.n_steps
            learner.step_seconds = measured if learner.step_seconds is None else (learner.step_seconds + measured) / 2
        return values

    def publish(self, values: torch.Tensor) -> None:
        """Rows of online_steps.csv and the logged metrics; the stream position advances."""
        learner, m = self.learner, self.learner.method
        losses, ratios = values[:, 0].tolist(), values[:, 1].tolist()
        rows = [
            [learner.position, step, loss, lr, momentum, size * learner.world, ratio]
            + ["" if math.isnan(v) else v for v in extra]
            for step, ((loss, ratio, *extra), (lr, momentum), size) in enumerate(
                zip(values.tolist(), self.lr_momentum, self.sizes, strict=True)
            )
        ]
        learner.position += 1
        if learner.world > 1 and learner.cfg.check_replicas:
            check_replicas(m, f"stream batch {learner.position - 1}")
        learner.recent_ratios.append(sum(ratios) / len(ratios))
        learner._write_steps(rows)
        throughput = self.candidates / self.seconds
        m.log_dict(
            {
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
            },
            on_step=True,
            on_epoch=False,
        )
        m.log_dict({"loss_last": losses[-1], "img_s": throughput}, prog_bar=True, on_step=True, logger=False)
