"""Self-supervised methods. A method is one file with a ``BaseMethod`` subclass and an entry in ``METHODS``."""

from solo_ossl.methods.barlow_twins import BarlowTwins
from solo_ossl.methods.base import BaseMethod, Regime
from solo_ossl.methods.byol import BYOL
from solo_ossl.methods.mocov3 import MoCoV3
from solo_ossl.methods.momentum import MomentumMethod
from solo_ossl.methods.simclr import SimCLR
from solo_ossl.methods.simsiam import SimSiam
from solo_ossl.methods.vicreg import VICReg

METHODS: dict[str, type[BaseMethod]] = {
    "simclr": SimCLR,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "byol": BYOL,
    "simsiam": SimSiam,
    "mocov3": MoCoV3,
}

__all__ = [
    "BYOL",
    "METHODS",
    "BarlowTwins",
    "BaseMethod",
    "MoCoV3",
    "MomentumMethod",
    "Regime",
    "SimCLR",
    "SimSiam",
    "VICReg",
]
