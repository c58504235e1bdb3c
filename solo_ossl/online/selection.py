"""Which of a step's stream + memory candidates are trained on (``online.selection``).

A rule is a small class with ``select``; it may also act at the start of each stream batch. Adding one is a class
here and an entry in ``SELECTIONS``. ``none`` trains on every candidate and has no class.
"""

from dataclasses import dataclass

import torch

from solo_ossl.online.rals import FrozenCopy, batch_stats_without_update, rals_select, random_select


@dataclass
class Selected:
    units: torch.Tensor  # indices of the kept units (samples, or groups of ``group_size``)
    current: torch.Tensor | None = None  # the current model's loss of every unit, where the rule computed it
    images_forward: int = 0  # image-views forwarded to decide (scoring passes)


class RandomSelection:
    """k units uniformly at random: the same candidates and compute as RALS without its scoring (the ablation that
    tells whether RALS's choice matters or only its extra candidates do)."""

    def start_stream_batch(self, method) -> None:
        pass

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        return Selected(random_select(v1.size(0) // method.group_size, k_units, v1.device))


class RalsSelection:
    """Reducible Anchor Loss Selection (paper Sec. 4.2): the k units whose loss rose most from the anchor (the model
    at the start of this stream batch) to the current model, on the same views, without gradients. At local step 0
    the two models are equal and every score is 0, so k units are chosen at random without scoring."""

    def __init__(self) -> None:
        self.anchor: FrozenCopy | None = None

    def start_stream_batch(self, method) -> None:
        if self.anchor is None:
            self.anchor = FrozenCopy(method.backbone, method.projector)
        self.anchor.refresh(method.backbone, method.projector)

    @torch.no_grad()
    def unit_losses(self, method, v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every unit's loss under the current model and under the anchor, on the same views."""
        with batch_stats_without_update(method.backbone, method.projector, self.anchor):
            current = method.per_sample_loss(method(v1)["z"], method(v2)["z"])
            anchor = method.per_sample_loss(self.anchor(method._prepare(v1)), self.anchor(method._prepare(v2)))
        return current, anchor

    def select(self, method, step: int, v1: torch.Tensor, v2: torch.Tensor, k_units: int) -> Selected:
        if step == 0:
            return Selected(random_select(v1.size(0) // method.group_size, k_units, v1.device))
        current, anchor = self.unit_losses(method, v1, v2)
        return Selected(rals_select(current, anchor, k_units), current, images_forward=4 * v1.size(0))


SELECTIONS = {"random": RandomSelection, "rals": RalsSelection}
SELECTION_CHOICES = ("none", *SELECTIONS)


def build_selection(name: str) -> RandomSelection | RalsSelection | None:
    return None if name == "none" else SELECTIONS[name]()
