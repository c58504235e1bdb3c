"""What the ``online`` config section means beyond its keys: the memory batch, how many steps fit a time budget, and the checks that a configuration splits into whole selection groups (over processes,
too). Pure functions of the config; the learner, the regime and the stream driver read them."""

import math

from solo_ossl.args.validate import at_least, one_of
from solo_ossl.memory import POLICIES
from solo_ossl.online.selection import selection_choices, whole_groups
from solo_ossl.online.slclrs import SCHEDULES, pct_start_for
from solo_ossl.utils.errors import SoloOsslError


def memory_batch_size(online_cfg) -> int:
    return round(online_cfg.memory.batches * online_cfg.stream_batch_size)


def steps_within_budget(budget_s: float, step_s: float, pct_start: float) -> int:
    """Local steps of ``step_s`` seconds that fit in ``budget_s``: at least the fewest a one-cycle schedule
    accepts (``pct_start * N > 1``)."""
    fewest = math.floor(1 / pct_start) + 1
    return max(fewest, math.floor(budget_s / step_s))


def validate_online(online, group_size: int) -> None:
    """The online section for a method scoring units of ``group_size`` samples."""
    at_least("online", online, 1, "steps_per_batch", "stream_batch_size", "checkpoint_every")
    at_least("online", online, 0, "max_stream_batches", "probe_heldout")
    at_least("online.memory", online.memory, 1, "capacity")
    most = 0.5 if online.stream.blurry_mode == "neighbours" else 1.0
    if not 0 <= online.stream.blurry <= most:
        raise SoloOsslError(
            f"online.stream.blurry must be in [0, {most}] with blurry_mode={online.stream.blurry_mode}, got "
            f"{online.stream.blurry}"
        )
    if online.time_budget_s < 0:
        raise SoloOsslError(f"online.time_budget_s must be >= 0 (0: a fixed N), got {online.time_budget_s}")
    pct_start = pct_start_for(online, online.steps_per_batch)
    if pct_start * online.steps_per_batch <= 1:
        raise SoloOsslError(
            f"online.steps_per_batch={online.steps_per_batch} x online.pct_start={pct_start} must exceed 1 for a "
            "one-cycle schedule: use at least 3 steps (pct_start 0.5)"
        )
    one_of("online.memory.policy", online.memory.policy, POLICIES)
    one_of("online.selection", online.selection, selection_choices())
    one_of("online.schedule", online.schedule, SCHEDULES)
    if online.selection == "none":
        return
    k, memory = online.k, memory_batch_size(online)
    candidates = online.stream_batch_size + memory
    if k > candidates:
        raise SoloOsslError(
            f"online.k={k} is larger than the {candidates} candidates per step (stream {online.stream_batch_size} "
            f"+ memory {memory}): lower k or raise online.memory.batches"
        )
    if k < group_size or whole_groups(k, group_size) != k:
        raise SoloOsslError(f"online.k={k} must be a positive multiple of method.group_size={group_size}")
    for what, size in (("online.stream_batch_size", online.stream_batch_size), ("memory batch", memory)):
        if whole_groups(size, group_size) != size:
            raise SoloOsslError(
                f"{what} {size} is not divisible by method.group_size {group_size}: selection keeps whole groups"
            )


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
        if whole_groups(size, unit) != size:
            raise SoloOsslError(
                f"{what} = {size} does not split over {world} processes"
                + (f" in whole groups of {group_size}" if unit != world else "")
                + f": make it a multiple of {unit}"
            )
