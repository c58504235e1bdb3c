"""The package's structure is a contract (pyproject.toml, [tool.importlinter]): layers whose imports point down only,
a config package that imports no runtime module, and no import cycle at any level, lazy imports included."""

import os

from .conftest import ROOT


def test_the_import_contracts_hold():
    from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

    cwd = os.getcwd()
    os.chdir(ROOT)  # lint-imports reads pyproject.toml from the working directory
    try:
        assert (
            lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
            == EXIT_STATUS_SUCCESS
        )
    finally:
        os.chdir(cwd)
