"""The online learner's state: memory, selection rule, stream position and counters, their checkpoint and their
sharding over processes. Lightning-free; the regime (``solo_ossl.regimes.online``) drives it. What the config means
is in ``solo_ossl.online.settings``, the schedule in ``solo_ossl.online.slclrs``, the step in
``solo_ossl.online.algorithm``."""

import collections
import time
from collections.abc import Callable

import torch

from solo_ossl.memory import build_memory
from solo_ossl.online.selection import build_selection, units_to_keep, whole_groups
from solo_ossl.online.settings import memory_batch_size, steps_within_budget, validate_sharding
from solo_ossl.utils.device import capture_rng_states, restore_rng_states
from solo_ossl.utils.distributed import all_reduce_, gather_to_all
from solo_ossl.utils.errors import SoloOsslError

HELDOUT_VIEWS_SEED = 46  # the held-out probe's views: one seed for every run, so that all runs probe the same views


class MemoryDraw:
    """One local step's memory samples: the samples (on the device the augmentation reads them from), their labels
    (on the training device) and their slots (where the memory refreshes features of samples trained on)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, slots: torch.Tensor) -> None:
        self.x, self.y, self.slots = x, y, slots


class OnlineLearner:
    """Memory, selection rule, stream position, counters and random states of an online run. ``dataset`` is where
    memory samples stored as indices are read from."""

    def __init__(self, online_cfg, group_size: int = 1, dataset=None, classifier_lr: float = 0.1) -> None:
        self.cfg = online_cfg
        self.group_size = group_size  # samples per scoring unit of the method
        self.classifier_lr = classifier_lr  # the online classifier's peak lr in each stream batch's schedule
        self.memory = build_memory(online_cfg.memory.capacity, online_cfg.memory.policy, online_cfg.memory.seed)
        self.selection = build_selection(online_cfg.selection)
        self.position = 0  # stream batches completed
        self.local_steps = 0  # optimizer steps taken over the stream (the momentum targets' tau schedule)
        self.total_stream_batches = 0  # set by the driver: the stream's length, for the tau schedule
        self.batch_plan: tuple[int, int] | None = None  # (steps before this stream batch, its N): plan_stream_batch
        self.rank, self.world = 0, 1  # this process's share of the stream, the memory and k (see ``shard``)
        self.dataset = dataset
        self.pending_rng: dict | None = None
        self.recent_ratios: collections.deque = collections.deque(maxlen=100)
        self.images_forward = 0  # image-views through the model, with or without gradient
        self.images_backward = 0  # image-views back-propagated
        self.clock = time.perf_counter  # seconds; a test's fake clock times the time-budget mode
        self.step_seconds: float | None = None  # running mean of the local step time (time-budget mode)
        # This stream batch's trained memory samples with their features, for a feature-keeping memory (MinRed):
        # (the draw's slots, the kept rows or None, the stream's rows, the kept rows' summed projections) per step.
        self.trained_memory: list[tuple[torch.Tensor, torch.Tensor | None, int, torch.Tensor]] = []
        # online.probe_heldout: the held-out images (uint8, host) and their fixed views, drawn at first use.
        self.heldout_images: torch.Tensor | None = None
        self._heldout_views: list[torch.Tensor] | None = None

    def shard(self, rank: int, world: int) -> None:
        """Process ``rank`` of ``world``: it trains on its part of every stream batch with its own memory shard
        (capacity / world, a generator seeded from online.memory.seed and the rank), draws its part of the memory
        batch, and keeps its share of the global top-k units (``online.selection_scope=global``: the scores are
        gathered each step, and the shares may differ) or the top k / world of its own units (``local``: no
        exchange, equal shares)."""
        if world == 1:
            return
        validate_sharding(self.cfg, self.group_size, world)
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

    @property
    def unit(self) -> int:
        """Samples per selection unit: the method's scoring group where a rule selects, else single samples."""
        return self.group_size if self.selection is not None else 1

    @property
    def k_units(self) -> int:
        """Units this process keeps at a local step."""
        return units_to_keep(self.cfg.k, self.world, self.unit)

    def draw_memory(self, device: torch.device, samples_device: torch.device) -> MemoryDraw:
        """A memory draw (this process's share of the memory batch, in whole selection units): the samples on
        ``samples_device`` (the host for file indices that DALI decodes), the labels on the training ``device``."""
        slots = self.memory.sample_slots(memory_batch_size(self.cfg) // self.world)
        slots = slots[: whole_groups(len(slots), self.unit)]
        x, y = self.memory.take(slots)
        if self.cfg.memory.store == "indices" and len(x):
            x = self.dataset.load(x)
        return MemoryDraw(x.to(samples_device, non_blocking=True), y.to(device, non_blocking=True), slots)

    def heldout_views(self, augment, device: torch.device) -> list[torch.Tensor]:
        """The held-out set's two views, drawn once with their own seed inside a fork of the CPU generator (the
        augmentation draws only there), so that training draws what it draws without them."""
        if self._heldout_views is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(HELDOUT_VIEWS_SEED)
                self._heldout_views = augment(self.heldout_images.to(device))
        return self._heldout_views

    def stored_images(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Images of samples ``x`` as the memory holds them (a memory of indices reads them from the dataset)."""
        return self.dataset.load(x.cpu()).to(device) if self.cfg.memory.store == "indices" else x

    def record_stream_batch(self, log, values) -> None:
        """A finished stream batch's counts: the image-views summed over processes, the time-budget mode's step time
        and the recent stream shares."""
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

    def note_trained(self, draw: MemoryDraw, kept: torch.Tensor | None, n_stream: int, out1: dict, out2: dict) -> None:
        """A local step's trained batch (the stream's ``n_stream`` rows, then the draw's; ``kept``: the rows trained
        on, None: all): a feature-keeping memory (MinRed) refreshes the features of its samples trained on when it
        takes the stream batch (``take_stream_batch``; it reads them only there)."""
        if self.memory.needs_features and len(draw.slots):
            z = (out1["z"] + out2["z"]).detach()
            self.trained_memory.append((draw.slots, kept, n_stream, z))

    def take_stream_batch(self, batch, features: Callable | None = None) -> None:
        """After its N steps, the memory takes the stream batch ``batch`` = (indexes, images, labels): first the
        features of its samples trained on, step by step (``note_trained``), then the batch itself (``features``
        gives a feature-keeping memory what it stores); the stream position moves past it."""
        for slots, kept, n_stream, z in self.trained_memory:
            rows = torch.arange(n_stream + len(slots), device=z.device) if kept is None else kept
            trained = (rows >= n_stream).nonzero().squeeze(1)  # rows of the trained batch that came from the memory
            self.memory.observe(slots[(rows[trained] - n_stream).cpu()], z[trained])
        self.trained_memory = []
        indexes, stream_x, stream_y = batch
        x = indexes.cpu() if self.cfg.memory.store == "indices" else stream_x
        self.memory.add(x, stream_y, features if self.memory.needs_features else None)
        self.position += 1

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

    def load_sharded_state(self, online: dict) -> None:
        """Restore what ``sharded_state`` saved (this process's shard), from a run of as many processes."""
        saved_world = online.get("world_size", 1)
        if saved_world != self.world:
            raise SoloOsslError(
                f"the checkpoint was saved by {saved_world} process(es) and this run has {self.world}: each holds its "
                f"own memory shard, so resume with the same devices x num_nodes = {saved_world}"
            )
        self.load_state_dict(online["shards"][self.rank] if self.world > 1 else online)

    def restore_pending_rng(self, device: torch.device) -> None:
        if self.pending_rng is not None:
            restore_rng_states(self.pending_rng, device)
            self.pending_rng = None
