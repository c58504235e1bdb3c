"""The comparison's rows, declared: one ``Strategy`` entry per row of Table 1 (and its ablations). Adding a row is
one entry in ``STRATEGIES``.

"Steps" N are epochs per task for the task-by-task strategies (CaSSLe), epochs over all the tasks for Offline, and
optimizer steps per stream batch for the online ones (Ours)."""

from collections.abc import Callable
from dataclasses import dataclass, field


def compute_matched_epochs(strategy: str, steps: int, last_task: int = 5) -> int:
    """Epochs at which CaSSLe / Offline back-propagate the image-views of Ours without RALS at N = ``steps``, for a
    sequence of tasks 1..``last_task`` (tasks 2.. streamed).

    Ours without RALS trains S/128 stream batches x N steps x 256 samples x 2 views = 4 N S views over the S
    stream samples of tasks 2..T. CaSSLe's E epochs over each of those tasks are 2 E S, so E = 2N; Offline's E
    epochs over all T tasks (T/(T-1) S) are 2 E S T/(T-1), so E = 2N (T-1)/T (1.6 N for T = 5).
    """
    if strategy.startswith("cassle"):
        return 2 * steps
    return round(2 * steps * (last_task - 1) / last_task)


@dataclass(frozen=True)
class Strategy:
    """One row: ``kind`` says how it trains (``offline``: epochs over all tasks from the task-1 checkpoint;
    ``continual``: task by task from it; ``online``: the stream of tasks 2..); ``config`` is the config it starts
    from (``{dataset}`` and ``{method}`` filled in); ``overrides`` are its own config overrides; ``epochs`` gives its
    epochs for N (offline and continual kinds)."""

    name: str
    label: str
    kind: str
    config: str
    overrides: tuple[str, ...] = ()
    epochs: Callable[[int, int], int] = field(default=lambda steps, last_task: steps)

    @property
    def task_by_task(self) -> bool:
        """Whether it trains the tasks one after another (and so has a per-task accuracy matrix)."""
        return self.kind != "offline"

    def config_name(self, dataset: str, method: str) -> str:
        return self.config.format(dataset=dataset, method=method)


def _matched(name: str) -> Callable[[int, int], int]:
    return lambda steps, last_task: compute_matched_epochs(name, steps, last_task)


PRETRAIN, ONLINE, ONLINE_RALS = (
    "pretrain/{dataset}/{method}",
    "online/{dataset}/{method}",
    "online/{dataset}/{method}_rals",
)

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("offline", "Offline", "offline", PRETRAIN),
        Strategy("cassle", "CaSSLe", "continual", PRETRAIN, ("++regime=cassle",)),
        Strategy("ours_no_rals", "Ours without RALS", "online", ONLINE),
        Strategy("ours", "Ours", "online", ONLINE_RALS),
        Strategy("offline_cm", "Offline, compute-matched", "offline", PRETRAIN, epochs=_matched("offline_cm")),
        Strategy(
            "cassle_cm", "CaSSLe, compute-matched", "continual", PRETRAIN, ("++regime=cassle",), _matched("cassle_cm")
        ),
        Strategy("ours_random", "Ours, random selection", "online", ONLINE_RALS, ("++online.selection=random",)),
        # SLCLRS isolated: the memory without selection at the one-cycle's mean lr and momentum, constant.
        Strategy(
            "ours_constant_lr", "Ours without RALS, constant lr", "online", ONLINE, ("++online.schedule=constant",)
        ),
        # RALS without SLCLRS: does RALS's gain depend on the per-batch one-cycle (docs/rals_mechanism.md)?
        Strategy("ours_constant_lr_rals", "Ours, constant lr", "online", ONLINE_RALS, ("++online.schedule=constant",)),
        # Interventions on RALS's score (docs/rals_mechanism.md).
        Strategy(
            "ours_rals_bottom",
            "Ours, bottom-k of RALS's score",
            "online",
            ONLINE_RALS,
            ("++online.selection=rals_bottom",),
        ),
        Strategy(
            "ours_rals_step_anchor",
            "Ours, anchor one local step behind",
            "online",
            ONLINE_RALS,
            ("++online.selection=rals_step_anchor",),
        ),
        Strategy(
            "ours_hardest", "Ours, top-k of the current loss", "online", ONLINE_RALS, ("++online.selection=hardest",)
        ),
        Strategy(
            "ours_anchor_hardest",
            "Ours, top-k of the anchor loss",
            "online",
            ONLINE_RALS,
            ("++online.selection=anchor_hardest",),
        ),
        Strategy(
            "ours_anchor_easiest",
            "Ours, bottom-k of the anchor loss",
            "online",
            ONLINE_RALS,
            ("++online.selection=anchor_easiest",),
        ),
        Strategy("ours_minred", "Ours, MinRed memory", "online", ONLINE_RALS, ("++online.memory.policy=minred",)),
    )
}
PAPER_STRATEGIES = ("offline", "cassle", "ours_no_rals", "ours")
# Pairs of rows whose per-seed differences the reports give (the runner's and docs/table1_cpu.md's), wherever both
# rows were run at the same N and tag.
PAIRS = (
    ("ours", "cassle"),
    ("ours", "ours_no_rals"),
    ("ours_no_rals", "cassle"),
    ("ours", "ours_random"),
    ("ours_no_rals", "cassle_cm"),
    ("ours", "cassle_cm"),
    ("ours_no_rals", "offline_cm"),
    ("ours", "offline_cm"),
    ("offline", "ours"),
    ("ours_no_rals", "ours_constant_lr"),
    ("ours_constant_lr_rals", "ours_constant_lr"),
    ("ours", "ours_constant_lr_rals"),
)
