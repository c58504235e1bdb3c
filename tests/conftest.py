import os
import subprocess
import sys
from pathlib import Path

import pytest

from solo_ossl.args import load_config

ROOT = Path(__file__).resolve().parent.parent

TINY = [
    "++data.dataset=synthetic",
    "++data.synthetic_num_classes=10",
    "++data.synthetic_per_class=32",
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


def run_script(script: str, *args: str, threads: int | None = None) -> subprocess.CompletedProcess:
    """Run an entry-point script in a fresh interpreter (with ``threads`` torch threads per process if given)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, env=env, timeout=300
    )
