"""Load a YAML config by name, apply ``++key=value`` overrides and check every key and type against the schema.

``--config-path DIR --config-name NAME`` select ``DIR/NAME.yaml`` (default DIR: the configs shipped in the package).
A config may list ``defaults: [other/name, ...]`` to merge first, as hydra does.
"""

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from solo_ossl.args.schema import LinearConfig, PretrainConfig
from solo_ossl.utils.errors import SoloOsslError

PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _load_yaml(config_dir: Path, name: str, seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The config ``name`` and, before it, everything its ``defaults`` list pulls in."""
    path = config_dir / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.is_file():
        available = sorted(str(p.relative_to(config_dir))[:-5] for p in config_dir.rglob("*.yaml"))
        raise SoloOsslError(f"config '{name}' not found in {config_dir} (available: {', '.join(available)})")
    if name in seen:
        raise SoloOsslError(f"config '{name}' includes itself through defaults: {' -> '.join(seen + (name,))}")
    content = yaml.safe_load(path.read_text()) or {}
    layers = []
    for parent in content.pop("defaults", []):
        layers += _load_yaml(config_dir, parent, seen + (name,))
    return layers + [content]


def parse_overrides(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    """Split argv into --config-path, --config-name and ``key=value`` overrides (``++``/``+`` prefixes allowed)."""
    config_path = config_name = None
    overrides = []
    args = iter(argv)
    for arg in args:
        if arg.startswith("--config-path") or arg.startswith("--config-name"):
            flag, _, value = arg.partition("=")
            value = value or next(args, None)
            if value is None:
                raise SoloOsslError(f"{flag} needs a value")
            if flag == "--config-path":
                config_path = value
            else:
                config_name = value
        elif "=" in arg:
            overrides.append(arg.lstrip("+"))
        else:
            raise SoloOsslError(
                f"cannot parse argument '{arg}': use ++key=value, --config-path DIR, --config-name NAME"
            )
    return config_path, config_name, overrides


def _open_mappings(node: DictConfig) -> None:
    """Struct mode rejects unknown keys in the schema's sections, and must not in its free mappings (``dict`` fields
    such as ``online.pct_start_by_steps``), whose keys are data."""
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            if child._metadata.object_type is dict:
                OmegaConf.set_struct(child, False)
            else:
                _open_mappings(child)


def load_config(argv: list[str], schema: type = PretrainConfig) -> DictConfig:
    """Build the run config from command-line style arguments; an unknown key, a wrong type or a value outside a
    key's choices raises a ``SoloOsslError`` naming the key."""
    try:
        return _merge_config(argv, schema)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        raise SoloOsslError(f"bad config{f' (key {key!r})' if key else ''}: {str(e).splitlines()[0]}") from e


# Keys that a regime replaced: ``regime`` chooses it (solo_ossl.regimes.REGIMES).
REPLACED_KEYS = {"cassle.enabled": "cassle", "online.enabled": "online"}


def refuse_replaced_keys(keys: list[str], where: str) -> None:
    for key in keys:
        if key in REPLACED_KEYS:
            regime = REPLACED_KEYS[key]
            raise SoloOsslError(
                f"{key} ({where}) was replaced by the regime key: write 'regime: {regime}' in the config, or "
                f"++regime={regime}, instead of {key}"
            )


def _dotted_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict):
            keys += _dotted_keys(value, f"{prefix}{key}.")
    return keys


def _merge_config(argv: list[str], schema: type) -> DictConfig:
    config_path, config_name, overrides = parse_overrides(argv)
    config = OmegaConf.structured(schema)
    OmegaConf.set_struct(config, True)
    _open_mappings(config)
    if config_name:
        config_dir = Path(config_path) if config_path else PACKAGE_CONFIGS
        for layer in _load_yaml(config_dir, config_name):
            refuse_replaced_keys(_dotted_keys(layer), f"config {config_name}")
            config = OmegaConf.merge(config, layer)
    refuse_replaced_keys([o.partition("=")[0] for o in overrides], "command line")
    for override in overrides:
        key, _, value = override.partition("=")
        # YAML parsing gives numbers, booleans, lists and null their types, as hydra does.
        OmegaConf.update(config, key, yaml.safe_load(value) if value else "", merge=True)
    return config


def load_linear_config(argv: list[str]) -> DictConfig:
    return load_config(argv, LinearConfig)
