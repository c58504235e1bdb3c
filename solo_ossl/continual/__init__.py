from solo_ossl.continual.cassle import Distiller, run_continual

__all__ = ["Distiller", "run_continual"]
