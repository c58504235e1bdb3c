from solo_ossl.losses.barlow import barlow_loss_func, barlow_loss_per_group
from solo_ossl.losses.distill import simclr_distill_loss_func
from solo_ossl.losses.simclr import simclr_loss_func, simclr_loss_per_sample
from solo_ossl.losses.vicreg import vicreg_loss_func, vicreg_loss_per_group

__all__ = [
    "barlow_loss_func",
    "barlow_loss_per_group",
    "simclr_distill_loss_func",
    "simclr_loss_func",
    "simclr_loss_per_sample",
    "vicreg_loss_func",
    "vicreg_loss_per_group",
]
