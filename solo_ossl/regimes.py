"""A method with the training regime its config asks for composed around it: offline (the method's own step),
CaSSLe (``cassle.enabled``: a distillation term, task by task) or online (``online.enabled``: the paper's stream
step with memory, SLCLRS and a selection rule)."""

from pathlib import Path

from omegaconf import DictConfig

from solo_ossl.continual.cassle import CassleRegime
from solo_ossl.methods import METHODS, BaseMethod
from solo_ossl.online.step import OnlineLearner


def build_model(
    cfg: DictConfig, num_classes: int, mean, std, dataset=None, steps_csv: Path | None = None
) -> BaseMethod:
    """``dataset`` and ``steps_csv`` are the online regime's (the source of memory samples stored as indices, and
    the per-step CSV). The config is one that ``validate_pretrain`` accepted."""
    method = METHODS[cfg.method.name](cfg, num_classes, mean, std)
    if cfg.cassle.enabled:
        CassleRegime(cfg.cassle).attach(method)
    elif cfg.online.enabled:
        OnlineLearner(cfg.online, dataset, steps_csv).attach(method)
    return method
