from solo_ossl.online.algorithm import optimize_step, run_local_steps, select_candidates, train_stream_batch
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.rals import expand_groups, rals_select, random_select
from solo_ossl.online.selection import SELECTIONS, SelectionRule
from solo_ossl.online.slclrs import SCHEDULES, slclrs
from solo_ossl.online.stream import StreamBatchSampler, stream_order

__all__ = [
    "SCHEDULES",
    "SELECTIONS",
    "OnlineLearner",
    "SelectionRule",
    "StreamBatchSampler",
    "expand_groups",
    "optimize_step",
    "rals_select",
    "random_select",
    "run_local_steps",
    "select_candidates",
    "slclrs",
    "stream_order",
    "train_stream_batch",
]
