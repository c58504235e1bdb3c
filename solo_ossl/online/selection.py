"""Which of a step's stream + memory candidates are trained on (``online.selection``): the rules, their one result
type (``Selected``), the whole-groups rule and ``select_candidates``, which applies a rule at a local step.

A rule is a small class with ``select``; it may also act at the start of each stream batch, and it says through its
interface whether it needs scores. Adding one is a class (here or in a file of its own) and an entry in
``SELECTIONS``. ``none`` trains on every candidate and has no class.
"""

import dataclasses
from dataclasses import dataclass

import torch

from solo_ossl.modules.frozen import FrozenCopy, batch_stats_without_update
from solo_ossl.online.rals import random_select, reducible_anchor_loss, top_k
from solo_ossl.utils.distributed import gather_with_grad


def whole_groups(samples: int, group_size: int) -> int:
    """The whole-groups rule: the most of ``samples`` that form whole units of ``group_size`` (a rule keeps or drops
    a scoring group's samples together, so every count it sees is a multiple of the group)."""
    return samples - samples % group_size


def expand_groups(groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """Sample indices covered by the selected groups (group g = samples g*size .. g*size+size-1)."""
    return (groups.unsqueeze(1) * group_size + torch.arange(group_size, device=groups.device)).flatten()


@dataclass
class Selected:
    """A local step's choice. The rule gives the kept ``units`` (None: all), every unit's loss under the current
    model and under the anchor where it computed them, and the image-views it forwarded to decide;
    ``select_candidates`` adds the kept sample rows (None: all) and the stream's share among them (a device
    scalar)."""

    units: torch.Tensor | None
    current: torch.Tensor | None = None
    anchor: torch.Tensor | None = None
    images_forward: int = 0
    kept: torch.Tensor | None = None
    share: torch.Tensor | None = None

    def stream_unit_loss(self, stream_units: int, not_measured: torch.Tensor) -> torch.Tensor:
        """The stream units' mean current loss (the first ``stream_units``), or ``not_measured`` without scores."""
        return not_measured if self.current is None else self.current[:stream_units].mean()


class SelectionRule:
    """The interface: ``start_stream_batch`` once per stream batch, ``select`` at every local step."""

    def start_stream_batch(self, method) -> None:
        pass

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        raise NotImplementedError

    scores_needed = False  # whether the rule computes the units' scores at its steps
    chooses_by_score = False  # whether its choice follows the units' scores (random: no)

    def require_scores(self) -> None:
        """From now on, score every step's units (the candidate log records them), if this rule can score."""

    def choose_globally(self, rank: int, world: int) -> None:
        """Over ``world`` processes, choose over every process's units (``online.selection_scope=global``); a rule
        without scores keeps choosing its own share."""

    @property
    def shares_may_differ(self) -> bool:
        """Whether the processes may keep different numbers of samples (a global choice by score)."""
        return False


class AnchorScoredSelection(SelectionRule):
    """A rule that scores the units under the current model and under the anchor: the whole scored model
    (``method.scored_modules``, momentum targets included) frozen at the start of this stream batch, on the same
    views, without gradients, BatchNorm with batch statistics and running statistics untouched. At local step 0 the
    two models are equal and every score is 0, so k units are chosen at random without scoring."""

    scores_needed = True  # False: the rule chooses without the scores (random), unless they are logged
    chooses_by_score = True  # False: ``choose`` ignores the scores (random), so each process chooses its own share

    def __init__(self) -> None:
        self.anchor: FrozenCopy | None = None
        self.spread: tuple[int, int] | None = None  # (rank, world size) where the choice is global

    def require_scores(self) -> None:
        self.scores_needed = True

    def choose_globally(self, rank: int, world: int) -> None:
        """Over ``world`` processes: keep the top-k of every process's units (``online.selection_scope=global``)."""
        self.spread = (rank, world)

    @property
    def shares_may_differ(self) -> bool:
        return self.spread is not None and self.chooses_by_score

    def start_stream_batch(self, method) -> None:
        if not self.scores_needed:
            return
        if self.anchor is None:
            self.anchor = FrozenCopy(method, method.scored_modules)
        self.anchor.refresh(method)

    @torch.no_grad()
    def unit_losses(self, method, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every unit's loss under the current model and under the anchor, on the same views."""
        with batch_stats_without_update(method):
            current = method.global_unit_losses(method(v1), method(v2))
            anchor = method.global_unit_losses(self.anchor.run(method, v1), self.anchor.run(method, v2))
        return current, anchor

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        """Every unit's score from its current and anchor losses (float): the rule keeps the k highest."""
        raise NotImplementedError

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        """The kept units: the ``k_units`` of highest ``score``."""
        return top_k(self.score(current.float(), anchor.float()), k_units)

    @torch.no_grad()
    def choose_share(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        """This process's kept units: ``choose`` over its own units (``k_units`` of them), or, where the choice is
        global, its part of ``choose`` over every process's units (``k_units`` x world of them; the scores are
        gathered, and every process computes the same choice)."""
        if not self.shares_may_differ:
            return self.choose(current, anchor, k_units)
        rank, world = self.spread
        chosen = self.choose(gather_with_grad(current), gather_with_grad(anchor), k_units * world)
        units = current.numel()
        mine = chosen[(chosen >= rank * units) & (chosen < (rank + 1) * units)]  # a shape from values: a host read
        return mine - rank * units

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        units = v1.size(0) // method.group_size
        if step == 0 or not self.scores_needed:
            return Selected(random_select(units, k_units, v1.device))
        current, anchor = self.unit_losses(method, v1, v2)
        return Selected(self.choose_share(current, anchor, k_units), current, anchor, images_forward=4 * v1.size(0))


class RandomSelection(AnchorScoredSelection):
    """k units uniformly at random: the same candidates and compute as RALS without its scoring (the ablation that
    tells whether RALS's choice matters or only its extra candidates do). With ``scores_needed`` (the candidate log)
    it scores the units as RALS does and still chooses at random, with the same random draws."""

    scores_needed = False
    chooses_by_score = False

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return random_select(current.numel(), k_units, current.device)


class RalsSelection(AnchorScoredSelection):
    """Reducible Anchor Loss Selection (paper Sec. 4.2): the k units whose loss rose most from the anchor to the
    current model."""

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return reducible_anchor_loss(current, anchor)


class StepAnchorRalsSelection(RalsSelection):
    """RALS whose anchor follows the model one local step behind: after scoring at each step, the anchor becomes the
    model as it is before that step's update, so the next step's score is the change of each unit's loss from the
    last update alone (at local step 1 it is RALS's score). The "counter what the last updates broke" reading of
    RALS (``docs/rals_mechanism.md``) predicts that this keeps most of RALS's gain."""

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        selected = super().select(method, step, v1, v2, k_units)
        self.anchor.refresh(method)  # the model before this step's update: the next step's anchor
        return selected


class BottomRalsSelection(AnchorScoredSelection):
    """The k units whose loss rose least (fell most) since the anchor: RALS with the sign of its score flipped."""

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return -reducible_anchor_loss(current, anchor)


class HardestSelection(AnchorScoredSelection):
    """The k units of highest loss under the current model (hardness alone, without the anchor)."""

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return current


class AnchorHardestSelection(AnchorScoredSelection):
    """The k units of highest loss under the anchor (what was hard when the stream batch arrived)."""

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return anchor


class AnchorEasiestSelection(AnchorScoredSelection):
    """The k units of lowest loss under the anchor: RALS's kept units are easier under the anchor than its dropped
    ones, and this rule asks whether that alone (skipping the view pairs that were hard) carries RALS's gain."""

    def score(self, current: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return -anchor


# online.selection. The others are interventions on RALS's score (docs/rals_mechanism.md).
SELECTIONS: dict[str, type[SelectionRule]] = {
    "random": RandomSelection,
    "rals": RalsSelection,
    "rals_step_anchor": StepAnchorRalsSelection,
    "rals_bottom": BottomRalsSelection,
    "hardest": HardestSelection,
    "anchor_hardest": AnchorHardestSelection,
    "anchor_easiest": AnchorEasiestSelection,
}


def units_to_keep(k: int, world: int, group_size: int) -> int:
    """Units this process keeps of its candidates: its share of ``online.k`` in whole groups."""
    return k // world // group_size


def select_candidates(
    rule: SelectionRule | None, k_units: int, method, step: int, v1: torch.Tensor, v2: torch.Tensor, n_stream: int
) -> Selected:
    """Apply ``rule`` to a local step's candidates (views ``v1``, ``v2``; the first ``n_stream`` are the stream's),
    keeping ``k_units`` units; with no more candidate units than that (the memory still filling), or without a
    rule, all are trained on."""
    candidates = v1.size(0)
    share = torch.full((), n_stream / candidates, device=v1.device)  # a fill: no copy from the host
    units = candidates // method.group_size
    if rule is None or k_units >= units:
        return Selected(None, share=share)
    selected = rule.select(method, step, v1, v2, k_units)
    kept = expand_groups(selected.units, method.group_size)
    return dataclasses.replace(selected, kept=kept, share=(kept < n_stream).float().mean())


def selection_choices() -> tuple[str, ...]:
    return ("none", *SELECTIONS)


def build_selection(name: str) -> SelectionRule | None:
    return None if name == "none" else SELECTIONS[name]()
