"""Every entry point's command line, run through Hydra as solo-learn's are: ``--config-path/--config-name``,
``++key=value``, ``--cfg job``, ``--help`` and ``-m`` sweeps (``++seed=0,1,2``), with Hydra's launchers
(``hydra/launcher=submitit_slurm`` with the ``cluster`` extra).

What stays ours:
- the config: the YAML files and their ``defaults`` are merged by ``load_config`` and registered, over the typed schema
  (also in Hydra's ConfigStore), as Hydra's primary config; each job rebuilds its config with ``load_config`` from its
  own overrides, so that a run gets the same config with or without Hydra;
- the errors: every override, each value of a sweep included, is checked against the schema before Hydra starts, so
  that an unknown key, a wrong type or a value outside the choices is one ``error:`` line and exit code 2;
- the output folders: no Hydra run folder (``hydra.run.dir=.``, no ``.hydra/``, Python's logging untouched). A sweep
  keeps Hydra's sweep folder (``<output_dir>/multirun/<date>/<time>``: its ``multirun.yaml`` and a cluster's job
  logs), and each of its jobs runs in ``<output_dir>/<name>/<key>=<value>,...`` (the swept keys), so that jobs do not
  overwrite each other and a rerun of the sweep resumes each job in its folder.
"""

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf

from solo_ossl.args.config import load_config, parse_overrides
from solo_ossl.utils.errors import SoloOsslError, exit_on_user_error

T = TypeVar("T")

# Hydra's own flags, passed to it as they are: those that take a value, then the others.
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--experimental-rerun"}
HYDRA_FLAGS = {
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--resolve",
    "--run",
    "-r",
    "--multirun",
    "-m",
    "--shell-completion",
    "-sc",
    "--info",
    "-i",
}
INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
PRIMARY = "solo_ossl_run"

HELP = """${hydra.help.header}
Usage: python ${hydra.job.name}.py --config-name NAME [++key=value ...]
       python ${hydra.job.name}.py --config-name NAME -m ++seed=0,1,2 [hydra/launcher=submitit_slurm]
       python ${hydra.job.name}.py --config-name NAME --cfg job    (print the config and stop)
Configs: the package's solo_ossl/configs (pretrain/, online/, linear/ ...), or --config-path DIR.

== Config ==
$CONFIG
${hydra.help.footer}"""


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(ours, Hydra's): our ``--config-path/--config-name`` and overrides, Hydra's flags and ``hydra...`` overrides."""
    ours, hydra_args = [], []
    args = iter(argv)
    for arg in args:
        flag = arg.partition("=")[0]
        if flag in HYDRA_FLAGS_WITH_VALUE:
            hydra_args.append(arg)
            if "=" not in arg:
                value = next(args, None)
                if value is None:
                    raise SoloOsslError(f"{flag} needs a value (e.g. --cfg job)")
                hydra_args.append(value)
        elif flag in HYDRA_FLAGS:
            hydra_args.append(arg)
        elif flag in ("-cn", "-cp"):
            raise SoloOsslError(f"write --config-{'name' if flag == '-cn' else 'path'} instead of {flag}")
        elif is_hydra_override(arg):
            hydra_args.append(arg)
        else:
            ours.append(arg)
    if "--info" in hydra_args or "-i" in hydra_args:  # its optional value is not one of ours
        for value in INFO_VALUES & set(ours):
            ours.remove(value)
            hydra_args.append(value)
    return ours, hydra_args


def override_key(arg: str) -> str:
    """The key of an override: ``++a.b=1`` -> ``a.b`` (also for Hydra's ``+`` and ``~`` prefixes)."""
    return arg.lstrip("+~").partition("=")[0]


def is_hydra_override(arg: str) -> bool:
    key = override_key(arg)
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def sweep_values(override: str) -> tuple[str, list[str]] | None:
    """``(key, [value, ...])`` for a sweep override (``++seed=0,1,2``, ``++lr=range(1,3)``, ``++x=choice(a,b)``), in
    Hydra's own grammar; None for a single value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(override)
    except HydraException as e:
        hint = ""
        if "{" in override and "'" not in override:  # a brace pattern (shards): Hydra's grammar reads braces
            key, _, value = override.partition("=")
            hint = f"; quote a value with braces: \"++{key.lstrip('+')}='{value}'\""
        raise SoloOsslError(f"cannot parse override '{override}': {str(e).splitlines()[0]}{hint}") from e
    if not parsed.is_sweep_override():
        return None
    return parsed.get_key_element().lstrip("+~"), [str(v) for v in parsed.sweep_string_iterator()]


def check_overrides(config_args: list[str], overrides: list[str], schema: type) -> list[str]:
    """Build the config once for each value of each sweep (the other keys at their first value), so that a bad key,
    type or value fails here with our error line; return the swept keys."""
    sweeps = {}
    for override in overrides:
        swept = sweep_values(override)
        if swept is not None:
            sweeps[override] = swept
    first = [f"++{sweeps[o][0]}={sweeps[o][1][0]}" if o in sweeps else o for o in overrides]
    load_config([*config_args, *first], schema)
    for i, override in enumerate(overrides):
        if override in sweeps:
            key, values = sweeps[override]
            for value in values[1:]:
                load_config([*config_args, *first[:i], f"++{key}={value}", *first[i + 1 :]], schema)
    return [key for key, _ in sweeps.values()]


def primary_config(base: DictConfig, schema: type, prog: str) -> dict[str, Any]:
    """The primary config Hydra composes: the typed schema, then the YAML config, then Hydra's settings."""
    from hydra.core.config_store import ConfigStore

    schema_name = f"solo_ossl_schema_{schema.__name__}"
    ConfigStore.instance().store(name=schema_name, node=schema)
    node: dict[str, Any] = OmegaConf.to_container(base, enum_to_str=True)  # type: ignore[assignment]
    node["defaults"] = [schema_name, "_self_", {"override hydra/job_logging": "none"}]
    node["hydra"] = {
        "run": {"dir": "."},
        "output_subdir": None,
        "sweep": {"dir": "${output_dir}/multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}"},
        "job": {"name": prog, "chdir": False},
        "help": {"app_name": prog, "template": HELP},
    }
    return node


def render(value: Any) -> str:
    """A config value as an override's value that ``load_config`` reads back to it (YAML: JSON's forms included)."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, enum_to_str=True)
    return value if isinstance(value, str) else json.dumps(value)


def job_argv(config_args: list[str], overrides: list[str], swept: list[str], cfg: DictConfig) -> list[str]:
    """One job's command line for ``load_config``: the command's overrides, a sweep's key at this job's value (read
    from Hydra's config: Hydra rewrites the job's override strings, ``++x=false`` as ``x=False``) and, in a sweep,
    the job's own run folder under the run's name."""
    chosen = {key: render(OmegaConf.select(cfg, key)) for key in swept}
    job = []
    for override in overrides:
        key = override_key(override)
        job.append(f"++{key}={chosen[key]}" if key in chosen else override)
    folder = ",".join(f"{key}={value}" for key, value in chosen.items() if key != "name")
    if folder:
        job.append(f"++name={cfg.name}/{folder}")
    return [*config_args, *job]


def run_entry_point(argv: list[str], schema: type, job: Callable[[DictConfig, list[str]], T], prog: str) -> T | None:
    """Run ``job(cfg, overrides)`` for the command line ``argv`` through Hydra, once or once per sweep point; returns
    the job's result for a single run (None for a sweep or a flag like ``--cfg``)."""
    import hydra
    from hydra.core.config_store import ConfigStore
    from hydra.core.hydra_config import HydraConfig

    ours, hydra_args = split_argv(argv)
    config_path, config_name, overrides = parse_overrides(ours)
    config_args = ["--config-path", config_path] if config_path else []
    config_args += ["--config-name", config_name] if config_name else []
    swept = check_overrides(config_args, overrides, schema)
    base = load_config(config_args, schema)
    ConfigStore.instance().store(name=PRIMARY, node=primary_config(base, schema, prog))
    results: list[T] = []

    @exit_on_user_error
    def one_job(cfg: DictConfig) -> None:
        run_argv = job_argv(config_args, overrides, swept, cfg)
        # Lightning's DDP launcher starts the other ranks with sys.argv, rewritten for Hydra while Hydra's config is
        # set: give it this job's own command line instead, which runs the job without Hydra's flags.
        hydra_config, HydraConfig.instance().cfg = HydraConfig.instance().cfg, None
        sys.argv = [saved[0], *run_argv]
        try:
            results.append(job(load_config(run_argv, schema), run_argv[len(config_args) :]))
        finally:
            HydraConfig.instance().cfg = hydra_config

    saved = sys.argv
    # What Hydra parses: its flags and the overrides; a method's own keys are added to its open section (checked
    # above and by the method).
    hydra_overrides = [f"++{o}" if o.startswith("method.") else o for o in overrides]
    sys.argv = [saved[0], *hydra_args, *hydra_overrides]
    try:
        hydra.main(version_base="1.3", config_path=None, config_name=PRIMARY)(one_job)()
    finally:
        sys.argv = saved
    return results[0] if len(results) == 1 and not swept else None
