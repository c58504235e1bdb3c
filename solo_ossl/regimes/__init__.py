"""Training regimes by name (``regime`` in a config): a regime is one file here, a ``Regime`` subclass (``base.py``:
the hooks a method calls and the questions a driver asks) that owns its config section and validator, and an entry
in ``REGIMES``. ``solo_ossl.model.build_model`` composes the configured one around the configured method."""

from solo_ossl.regimes.base import Regime
from solo_ossl.regimes.cassle import CassleRegime
from solo_ossl.regimes.online import OnlineRegime

REGIMES: dict[str, type[Regime]] = {"offline": Regime, "cassle": CassleRegime, "online": OnlineRegime}

__all__ = ["REGIMES", "CassleRegime", "OnlineRegime", "Regime"]
