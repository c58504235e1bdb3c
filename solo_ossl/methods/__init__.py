from solo_ossl.methods.barlow_twins import BarlowTwins
from solo_ossl.methods.base import BaseMethod
from solo_ossl.methods.simclr import SimCLR

METHODS: dict[str, type[BaseMethod]] = {"simclr": SimCLR, "barlow_twins": BarlowTwins}

__all__ = ["METHODS", "BarlowTwins", "BaseMethod", "SimCLR"]
