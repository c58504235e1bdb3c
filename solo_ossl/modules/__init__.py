from solo_ossl.modules.frozen import FrozenCopy, batch_stats_without_update
from solo_ossl.modules.heads import mlp_projector, predictor_mlp, simclr_projector
from solo_ossl.modules.momentum import cosine_tau, ema_update
from solo_ossl.modules.static_lr import keep_static_lrs

__all__ = [
    "FrozenCopy",
    "batch_stats_without_update",
    "cosine_tau",
    "ema_update",
    "keep_static_lrs",
    "mlp_projector",
    "predictor_mlp",
    "simclr_projector",
]
