from solo_ossl.continual.cassle import Distiller

__all__ = ["Distiller"]
