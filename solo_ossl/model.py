"""The model of a run: the configured method with the configured regime composed around it."""

from solo_ossl.methods import METHODS, BaseMethod
from solo_ossl.regimes import REGIMES


def build_model(cfg, num_classes: int, mean, std, dataset=None) -> BaseMethod:
    """The method of ``cfg`` with its regime attached; ``dataset`` is where an online memory of indices reads
    samples. The config is one that the drivers' validation accepted."""
    method = METHODS[cfg.method.name](cfg, num_classes, mean, std)
    REGIMES[cfg.regime].from_config(cfg, dataset).attach(method)
    return method
