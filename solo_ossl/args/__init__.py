from solo_ossl.args.config import load_config, load_linear_config, parse_overrides
from solo_ossl.args.schema import LinearConfig, PretrainConfig

__all__ = ["LinearConfig", "PretrainConfig", "load_config", "load_linear_config", "parse_overrides"]
