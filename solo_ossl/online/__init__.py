from solo_ossl.online.algorithm import end_stream_batch, run_local_steps, train_stream_batch
from solo_ossl.online.learner import OnlineLearner
from solo_ossl.online.rals import rals_select, random_select
from solo_ossl.online.selection import (
    SELECTIONS,
    Selected,
    SelectionRule,
    expand_groups,
    select_candidates,
    whole_groups,
)
from solo_ossl.online.slclrs import SCHEDULES, slclrs
from solo_ossl.online.step import optimize_step
from solo_ossl.online.stream import StreamBatchSampler, stream_order

__all__ = [
    "SCHEDULES",
    "SELECTIONS",
    "OnlineLearner",
    "Selected",
    "SelectionRule",
    "StreamBatchSampler",
    "end_stream_batch",
    "expand_groups",
    "optimize_step",
    "rals_select",
    "random_select",
    "run_local_steps",
    "select_candidates",
    "slclrs",
    "stream_order",
    "train_stream_batch",
    "whole_groups",
]
