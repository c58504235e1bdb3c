"""Frozen copies of a model's modules, and forward passes that leave BatchNorm running statistics alone.

RALS's anchor (the scored model at the start of each stream batch) and CaSSLe's previous-task model are both frozen
copies; both normalize with the batch's own statistics without updating the running ones.
"""

import contextlib
import copy
import itertools
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call


@contextlib.contextmanager
def batch_stats_without_update(*modules: nn.Module) -> Iterator[None]:
    """Normalize with the batch's own statistics and leave BatchNorm running statistics untouched.

    A scoring pass stands for the training loss, which is computed with batch statistics; the running averages
    trail the weights, which move fast within a one-cycle schedule. Scoring passes are not training and must not
    update them.
    """
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn, bn.training, bn.track_running_stats) for bn in bns]
    for bn in bns:
        bn.train()
        bn.track_running_stats = False
    try:
        yield
    finally:
        for bn, training, track in saved:
            bn.train(training)
            bn.track_running_stats = track


class FrozenCopy(nn.ModuleDict):
    """Frozen copies of the submodules ``names`` of ``model`` (e.g. backbone and projector), refreshed in place.

    The copies are submodules, so they move with the model and a checkpoint holds them (CaSSLe's previous-task model
    must survive a resume). ``run`` calls ``model``'s own forward with the copies' weights in place of the model's
    (``torch.func.functional_call``), so any method's outputs and losses can be computed under the frozen weights
    without the method knowing which modules were copied."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__({name: copy.deepcopy(model.get_submodule(name)).requires_grad_(False) for name in names})

    @torch.no_grad()
    def refresh(self, model: nn.Module) -> None:
        for name, module in self.items():
            module.load_state_dict(model.get_submodule(name).state_dict())

    def weights(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of the copies, named as in ``model``."""
        return {
            f"{name}.{key}": value
            for name, module in self.items()
            for key, value in itertools.chain(module.named_parameters(), module.named_buffers())
        }

    def run(self, model: nn.Module, *args):
        """``model(*args)`` with the copied modules' weights."""
        return functional_call(model, self.weights(), args, strict=False)
