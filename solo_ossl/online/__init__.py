from solo_ossl.online.memory import ReplayMemory
from solo_ossl.online.rals import FrozenCopy, batch_stats_without_update, expand_groups, rals_select, random_select
from solo_ossl.online.slclrs import slclrs
from solo_ossl.online.stream import StreamBatchSampler, stream_order

__all__ = [
    "FrozenCopy",
    "ReplayMemory",
    "StreamBatchSampler",
    "batch_stats_without_update",
    "expand_groups",
    "rals_select",
    "random_select",
    "slclrs",
    "stream_order",
]
