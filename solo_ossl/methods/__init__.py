"""Self-supervised methods. A method is one file with a ``BaseMethod`` subclass (its ``name``, its keys as
``Config``) and its class in ``METHODS``."""

from solo_ossl.methods.barlow_twins import BarlowTwins
from solo_ossl.methods.base import BaseMethod
from solo_ossl.methods.byol import BYOL
from solo_ossl.methods.mocov3 import MoCoV3
from solo_ossl.methods.momentum import MomentumMethod
from solo_ossl.methods.simclr import SimCLR
from solo_ossl.methods.simsiam import SimSiam
from solo_ossl.methods.vicreg import VICReg

METHODS: dict[str, type[BaseMethod]] = {m.name: m for m in (SimCLR, BarlowTwins, VICReg, BYOL, SimSiam, MoCoV3)}
# The one alias: Barlow Twins' short name, which its config files, bash files, result folders and the comparison
# runner's --method use.
ALIASES = {"barlow": "barlow_twins"}


def method_name(name: str) -> str:
    """The registry key of a method's name or alias."""
    return ALIASES.get(name, name)


def config_stem(name: str) -> str:
    """The file name of a method's configs (``pretrain/<dataset>/<stem>.yaml``): its alias where it has one."""
    key = method_name(name)
    return next((alias for alias, target in ALIASES.items() if target == key), key)


__all__ = [
    "ALIASES",
    "BYOL",
    "METHODS",
    "BarlowTwins",
    "BaseMethod",
    "MoCoV3",
    "MomentumMethod",
    "SimCLR",
    "SimSiam",
    "VICReg",
    "config_stem",
    "method_name",
]
