"""Which of a step's stream + memory candidates are trained on (``online.selection``).

A rule is a small class with ``select``; it may also act at the start of each stream batch. Adding one is a class
(here or in a file of its own) and an entry in ``SELECTIONS``. ``none`` trains on every candidate and has no class.
"""

from dataclasses import dataclass

import torch

from solo_ossl.modules.frozen import FrozenCopy, batch_stats_without_update
from solo_ossl.online.rals import rals_select, random_select, top_k
from solo_ossl.utils.distributed import gather_with_grad


@dataclass
class Selected:
    units: torch.Tensor  # indices of the kept units (samples, or groups of ``group_size``)
    current: torch.Tensor | None = None  # the current model's loss of every unit, where the rule computed it
    anchor: torch.Tensor | None = None  # the anchor's loss of every unit, where the rule computed it
    images_forward: int = 0  # image-views forwarded to decide (scoring passes)


class SelectionRule:
    """The interface: ``start_stream_batch`` once per stream batch, ``select`` at every local step."""

    def start_stream_batch(self, method) -> None:
        pass

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        raise NotImplementedError

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

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        raise NotImplementedError

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

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return rals_select(current, anchor, k_units)


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

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return rals_select(anchor, current, k_units)


class HardestSelection(AnchorScoredSelection):
    """The k units of highest loss under the current model (hardness alone, without the anchor)."""

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return top_k(current.float(), k_units)


class AnchorHardestSelection(AnchorScoredSelection):
    """The k units of highest loss under the anchor (what was hard when the stream batch arrived)."""

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return top_k(anchor.float(), k_units)


class AnchorEasiestSelection(AnchorScoredSelection):
    """The k units of lowest loss under the anchor: RALS's kept units are easier under the anchor than its dropped
    ones, and this rule asks whether that alone (skipping the view pairs that were hard) carries RALS's gain."""

    def choose(self, current: torch.Tensor, anchor: torch.Tensor, k_units: int) -> torch.Tensor:
        return top_k(-anchor.float(), k_units)


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


def selection_choices() -> tuple[str, ...]:
    return ("none", *SELECTIONS)


def build_selection(name: str) -> SelectionRule | None:
    return None if name == "none" else SELECTIONS[name]()
