import contextlib
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solo_ossl.args import load_config

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Under pytest-xdist (the README's ``-n 2``), each worker takes one core: one torch thread here and in the
    processes its tests start, so that two workers do not oversubscribe the cores (which slows both several-fold)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded_global_rngs():
    """Every test starts from the same global random state: under pytest-xdist the tests a worker ran before would
    otherwise decide a test's unseeded draws, so a statistical bound could pass locally and fail in CI."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    """The tests marked ``long`` first: the workers share out the short ones after them and finish together."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


# A tiny model on generated 16 px images: what the tests train (a 32 px image costs four times the convolutions).
TINY = [
    "++data.dataset=synthetic",
    "++data.synthetic_num_classes=10",
    "++data.synthetic_per_class=32",
    "++data.crop_size=16",
    "++backbone.width=0.125",
    "++method.proj_hidden_dim=64",
    "++method.proj_output_dim=64",
    "++precision=32",
    "++progress_bar=false",
]


@pytest.fixture
def tiny_config(tmp_path):
    """A config for a tiny model on generated data, written under tmp_path."""

    def make(config_name: str, *overrides: str):
        return load_config(["--config-name", config_name, *TINY, f"++output_dir={tmp_path}", *overrides])

    return make


def run_script(
    script: str, *args: str, threads: int | None = None, process: bool = False
) -> subprocess.CompletedProcess:
    """Run an entry-point script as a user does and return its exit code and output. In this interpreter (its
    ``main``, with stdout and stderr captured: the same error lines and exit codes, without a fresh interpreter's
    seconds of imports), or with ``process`` (or ``threads`` torch threads) in a fresh one: several processes, whose
    launcher re-runs the command, and what a terminal shows of Lightning's own logging."""
    if process or threads is not None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        return subprocess.run(
            [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, env=env, timeout=300
        )
    module = importlib.import_module(script.removesuffix(".py").replace("/", "."))
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            module.main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())
