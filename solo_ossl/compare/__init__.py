"""The Table-1 runner (``python -m solo_ossl.compare``): strategies declared in ``strategies``, one run in
``runner``, task-1 starts in ``task1``, probes in ``probe``, reports in ``reports``, the command in ``cli``."""

from solo_ossl.compare.cli import compare, main
from solo_ossl.compare.reports import mean_std, paired_difference
from solo_ossl.compare.runner import METRICS
from solo_ossl.compare.strategies import PAIRS, PAPER_STRATEGIES, STRATEGIES, compute_matched_epochs

__all__ = [
    "METRICS",
    "PAIRS",
    "PAPER_STRATEGIES",
    "STRATEGIES",
    "compare",
    "compute_matched_epochs",
    "main",
    "mean_std",
    "paired_difference",
]
