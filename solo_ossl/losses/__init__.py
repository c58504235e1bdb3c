from solo_ossl.losses.barlow import barlow_loss_func, barlow_loss_per_group
from solo_ossl.losses.byol import byol_loss_func, byol_loss_per_sample
from solo_ossl.losses.distill import contrastive_distill_loss, predictive_distill_loss, simclr_distill_loss_func
from solo_ossl.losses.mocov3 import mocov3_loss_func, mocov3_loss_per_sample
from solo_ossl.losses.simclr import simclr_loss_func, simclr_loss_per_sample
from solo_ossl.losses.simsiam import simsiam_loss_func, simsiam_loss_per_sample
from solo_ossl.losses.vicreg import vicreg_loss_func, vicreg_loss_per_group

__all__ = [
    "contrastive_distill_loss",
    "predictive_distill_loss",
    "barlow_loss_func",
    "barlow_loss_per_group",
    "byol_loss_func",
    "byol_loss_per_sample",
    "mocov3_loss_func",
    "mocov3_loss_per_sample",
    "simclr_distill_loss_func",
    "simclr_loss_func",
    "simclr_loss_per_sample",
    "simsiam_loss_func",
    "simsiam_loss_per_sample",
    "vicreg_loss_func",
    "vicreg_loss_per_group",
]
