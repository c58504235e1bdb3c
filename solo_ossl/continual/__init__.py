from solo_ossl.continual.cassle import CassleRegime, Distiller, run_continual

__all__ = ["CassleRegime", "Distiller", "run_continual"]
