from solo_ossl.methods.barlow_twins import BarlowTwins
from solo_ossl.methods.base import BaseMethod
from solo_ossl.methods.simclr import SimCLR
from solo_ossl.methods.vicreg import VICReg

METHODS: dict[str, type[BaseMethod]] = {"simclr": SimCLR, "barlow_twins": BarlowTwins, "vicreg": VICReg}

__all__ = ["METHODS", "BarlowTwins", "BaseMethod", "SimCLR", "VICReg"]
