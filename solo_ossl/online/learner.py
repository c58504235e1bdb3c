"""The online learner's state: memory, selection rule, stream position and counters, their checkpoint and their
sharding over processes. Lightning-free; the regime (``solo_ossl.regimes.online``) drives it."""

import collections
import functools
import math
import time

import torch
import torch.nn.functional as F

from solo_ossl.memory import build_memory
from solo_ossl.modules import keep_static_lrs
from solo_ossl.modules.frozen import batch_stats_without_update
from solo_ossl.online.selection import build_selection
from solo_ossl.online.slclrs import SCHEDULES
from solo_ossl.utils.device import capture_rng_states, restore_rng_states
from solo_ossl.utils.distributed import all_reduce_, gather_to_all
from solo_ossl.utils.errors import SoloOsslError


def memory_batch_size(online_cfg) -> int:
    return round(online_cfg.memory.batches * online_cfg.stream_batch_size)


def pct_start_for(online_cfg, steps: int) -> float:
    """SLCLRS's warm-up share for a stream batch of ``steps`` local steps."""
    return float(online_cfg.pct_start_by_steps.get(steps, online_cfg.pct_start))


def steps_within_budget(budget_s: float, step_s: float, pct_start: float) -> int:
    """Local steps of ``step_s`` seconds that fit in ``budget_s``: at least the fewest a one-cycle schedule
    accepts (``pct_start * N > 1``)."""
    fewest = math.floor(1 / pct_start) + 1
    return max(fewest, math.floor(budget_s / step_s))


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


class MemoryDraw:
    """One local step's memory samples: the samples (on the device the augmentation reads them from), their labels
    (on the training device) and their slots (where the memory refreshes features of samples trained on)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, slots: torch.Tensor) -> None:
        self.x, self.y, self.slots = x, y, slots


class OnlineLearner:
    """Memory, selection rule, stream position, counters and random states of an online run. ``dataset`` is where
    memory samples stored as indices are read from."""

    def __init__(self, online_cfg, dataset=None) -> None:
        self.cfg = online_cfg
        self.memory = build_memory(online_cfg.memory.capacity, online_cfg.memory.policy, online_cfg.memory.seed)
        self.selection = build_selection(online_cfg.selection)
        self.position = 0  # stream batches completed
        self.local_steps = 0  # optimizer steps taken over the stream (the momentum targets' tau schedule)
        self.total_stream_batches = 0  # set by the driver: the stream's length, for the tau schedule
        self.batch_plan: tuple[int, int] | None = None  # (steps before this stream batch, its N): plan_stream_batch
        self.rank, self.world = 0, 1  # this process's share of the stream, the memory and k (see ``shard``)
        self.dataset = dataset
        self.pending_rng: dict | None = None
        self.pending_optimizer_state: dict | None = None
        self.pending_precision_state: dict = {}
        self.recent_ratios: collections.deque = collections.deque(maxlen=100)
        self.images_forward = 0  # image-views through the model, with or without gradient
        self.images_backward = 0  # image-views back-propagated
        self.clock = time.perf_counter  # seconds; a test's fake clock times the time-budget mode
        self.step_seconds: float | None = None  # running mean of the local step time (time-budget mode)

    def shard(self, rank: int, world: int, group_size: int) -> None:
        """Process ``rank`` of ``world``: it trains on its part of every stream batch with its own memory shard
        (capacity / world, a generator seeded from online.memory.seed and the rank), draws its part of the memory
        batch, and keeps its share of the global top-k units (``online.selection_scope=global``: the scores are
        gathered each step, and the shares may differ) or the top k / world of its own units (``local``: no
        exchange, equal shares)."""
        if world == 1:
            return
        validate_sharding(self.cfg, group_size, world)
        self.rank, self.world = rank, world
        if self.global_selection:
            self.selection.choose_globally(rank, world)
        memory = self.cfg.memory
        self.memory = build_memory(memory.capacity // world, memory.policy, memory.seed + rank)

    @property
    def global_selection(self) -> bool:
        """Whether this process keeps its share of a choice over every process's units."""
        return self.world > 1 and self.selection is not None and self.cfg.selection_scope == "global"

    # ---- what one stream batch uses --------------------------------------------------------------------
    @property
    def total_local_steps(self) -> int:
        """The optimizer steps the stream plans, for the momentum target's tau schedule: the steps taken before this
        stream batch, plus the stream batches left (this one included) at this batch's N. With a fixed N that is
        stream batches x N; in the time-budget mode it follows N as the measured step time changes it."""
        if self.batch_plan is None:
            return max(1, self.total_stream_batches * self.cfg.steps_per_batch)
        steps_before, n_steps = self.batch_plan
        return max(1, steps_before + (self.total_stream_batches - self.position) * n_steps)

    def plan_stream_batch(self) -> int:
        """N for the stream batch about to train (``planned_steps``), recorded for ``total_local_steps``."""
        n_steps = self.planned_steps()
        self.batch_plan = (self.local_steps, n_steps)
        return n_steps

    def planned_steps(self) -> int:
        """N for the next stream batch: ``steps_per_batch``, or in the time-budget mode as many steps as fit."""
        if self.cfg.time_budget_s <= 0 or self.step_seconds is None:
            return self.cfg.steps_per_batch
        return steps_within_budget(self.cfg.time_budget_s, self.step_seconds, self.cfg.pct_start)

    def max_lrs(self, optimizer: torch.optim.Optimizer, classifier_lr: float) -> list[float]:
        return [classifier_lr if g.get("name") == "classifier" else self.cfg.max_lr for g in optimizer.param_groups]

    def stream_batch_schedule(self, optimizer: torch.optim.Optimizer, steps: int, classifier_lr: float):
        """SLCLRS (``online.schedule=one_cycle``): a fresh one-cycle lr/momentum schedule over this stream batch's
        ``steps``; or the constant schedule at its mean (``constant``)."""
        schedule = SCHEDULES[self.cfg.schedule](
            optimizer,
            steps,
            self.max_lrs(optimizer, classifier_lr),
            pct_start=pct_start_for(self.cfg, steps),
            div_factor=self.cfg.div_factor,
            final_div_factor=self.cfg.final_div_factor,
            base_momentum=self.cfg.base_momentum,
            max_momentum=self.cfg.max_momentum,
        )
        return keep_static_lrs(schedule)  # a static_lr group (SimSiam's predictor) keeps its base lr

    def k_units(self, group_size: int) -> int:
        return self.cfg.k // self.world // group_size

    def draw_memory(self, group_size: int, device: torch.device, samples_device: torch.device) -> MemoryDraw:
        """A memory draw: the samples on ``samples_device`` (the host for file indices that DALI decodes), the
        labels on the training ``device``."""
        slots = self.memory.sample_slots(memory_batch_size(self.cfg) // self.world)
        if self.selection is not None:  # whole groups only
            slots = slots[: len(slots) - len(slots) % group_size]
        x, y = self.memory.take(slots)
        if self.cfg.memory.store == "indices" and len(x):
            x = self.dataset.load(x)
        return MemoryDraw(x.to(samples_device, non_blocking=True), y.to(device, non_blocking=True), slots)

    @torch.no_grad()
    def memory_features(self, method, x: torch.Tensor) -> torch.Tensor:
        """What a feature-keeping memory (MinRed) stores for samples ``x`` as the memory holds them: the current
        model's L2-normalized projection of the un-augmented images, BatchNorm with batch statistics and its running
        statistics untouched (no random numbers are drawn)."""
        images = x
        if self.cfg.memory.store == "indices" and not hasattr(method.augment, "prefetch"):
            images = self.dataset.load(x.cpu()).to(method.device)  # DALI's eval transform decodes indices itself
        with batch_stats_without_update(method):
            return F.normalize(method(method.eval_transform(images), momentum=False)["z"].float(), dim=1)

    def add_to_memory(self, method, indexes: torch.Tensor, stream_x: torch.Tensor, stream_y: torch.Tensor) -> None:
        """The stream batch enters the memory, after its N steps."""
        x = indexes.cpu() if self.cfg.memory.store == "indices" else stream_x
        features = functools.partial(self.memory_features, method) if self.memory.needs_features else None
        self.memory.add(x, stream_y, features)

    # ---- state -----------------------------------------------------------------------------------------
    def state_dict(self, device: torch.device) -> dict:
        return {
            "position": self.position,
            "local_steps": self.local_steps,
            "memory": self.memory.state_dict(),
            "rng": capture_rng_states(device),
            "recent_ratios": list(self.recent_ratios),
            "images_forward": self.images_forward,
            "images_backward": self.images_backward,
            "step_seconds": self.step_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
        self.local_steps = state.get("local_steps", 0)
        self.memory.load_state_dict(state["memory"])
        self.recent_ratios.extend(state["recent_ratios"])
        self.images_forward, self.images_backward = state["images_forward"], state["images_backward"]
        self.step_seconds = state.get("step_seconds")
        # Applied right before the next step, after Lightning's own start-up has drawn whatever it draws.
        self.pending_rng = state["rng"]

    def sharded_state(self, device: torch.device) -> dict:
        """What a checkpoint holds: ``state_dict`` in one process; with several, every process's state (memory shard,
        generators, counters) gathered in rank order. A collective: every process calls it."""
        if self.world == 1:
            return self.state_dict(device)
        return {"world_size": self.world, "shards": gather_to_all(self.state_dict(device))}

    def resume_from(self, checkpoint: dict, method) -> None:
        """Restore a run saved mid-stream; the optimizer and precision states wait for ``restore_pending``."""
        online = checkpoint["online"]
        saved_world = online.get("world_size", 1)
        if saved_world != self.world:
            raise SoloOsslError(
                f"the checkpoint was saved by {saved_world} process(es) and this run has {self.world}: each holds its "
                f"own memory shard, so resume with the same devices x num_nodes = {saved_world}"
            )
        method.load_state_dict(checkpoint["state_dict"])
        self.load_state_dict(online["shards"][self.rank] if self.world > 1 else online)
        self.pending_optimizer_state = checkpoint["optimizer_states"][0]
        # Lightning saves its precision plugin's state (fp16's GradScaler) under the plugin's class name.
        self.pending_precision_state = {k: v for k, v in checkpoint.items() if k.endswith("Precision")}

    def restore_pending_rng(self, device: torch.device) -> None:
        if self.pending_rng is not None:
            restore_rng_states(self.pending_rng, device)
            self.pending_rng = None

    def end_stream_batch(self, log, values) -> None:
        """Advance past a finished stream batch: counters over all processes, the time-budget mode's step time, the
        recent stream shares, the position."""
        if self.world > 1:
            before = log.counted_before
            local = [self.images_forward - before[0], self.images_backward - before[1], log.candidates]
            forward, backward, log.candidates = all_reduce_(torch.tensor(local, dtype=torch.float64)).tolist()
            self.images_forward, self.images_backward = before[0] + int(forward), before[1] + int(backward)
        if self.cfg.time_budget_s > 0:
            measured = log.seconds / log.n_steps
            self.step_seconds = measured if self.step_seconds is None else (self.step_seconds + measured) / 2
        ratios = values.share.tolist()
        self.recent_ratios.append(sum(ratios) / len(ratios))
        self.position += 1
