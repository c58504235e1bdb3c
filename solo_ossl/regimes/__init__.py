"""Training regimes by name (``regime`` in a config): a regime is one file here, a ``Regime`` subclass that owns its
config section and validator, and an entry in ``REGIMES``. ``build_model`` composes the configured one around the
configured method."""

from solo_ossl.methods import METHODS, BaseMethod
from solo_ossl.methods.base import Regime
from solo_ossl.regimes.cassle import CassleRegime
from solo_ossl.regimes.online import OnlineRegime

REGIMES: dict[str, type[Regime]] = {"offline": Regime, "cassle": CassleRegime, "online": OnlineRegime}


def build_model(cfg, num_classes: int, mean, std, dataset=None) -> BaseMethod:
    """The method of ``cfg`` with its regime attached; ``dataset`` is where an online memory of indices reads
    samples. The config is one that the drivers' validation accepted."""
    method = METHODS[cfg.method.name](cfg, num_classes, mean, std)
    REGIMES[cfg.regime].from_config(cfg, dataset).attach(method)
    return method


__all__ = ["REGIMES", "CassleRegime", "OnlineRegime", "Regime", "build_model"]
