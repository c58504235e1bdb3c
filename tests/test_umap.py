"""main_umap.py: a PNG of the test features coloured by task and by class; without umap-learn, one error line."""

import sys
import types

import numpy as np
import pytest

from .conftest import TINY, run_script

ARGS = [
    "--config-name",
    "linear/embedded",
    *TINY[:3],
    "++data.crop_size=16",
    "++backbone.width=0.125",
    "++random_init=true",
]


def test_without_umap_learn_one_line_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap fails, as without the extra
    result = run_script("main_umap.py", *ARGS, f"++output_dir={tmp_path}")
    assert result.returncode == 2 and result.stderr.strip() == (
        'error: main_umap.py needs umap-learn: pip install -e ".[umap]" (or pip install umap-learn)'
    )


def test_the_plot_colours_the_test_features_by_task_and_class(tmp_path, monkeypatch):
    calls = []

    class UMAP:  # a stand-in with umap-learn's interface: the first two principal components
        def __init__(self, n_components, random_state):
            calls.append((n_components, random_state))

        def fit_transform(self, x):
            centred = x - x.mean(0)
            return centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=UMAP))
    result = run_script("main_umap.py", *ARGS, f"++output_dir={tmp_path}", "++name=u")
    assert result.returncode == 0, result.stderr
    png = tmp_path / "u" / "umap.png"
    assert result.stdout.strip().endswith(f"UMAP: {png}") and png.stat().st_size > 10_000
    assert calls == [(2, 5)]


@pytest.mark.long
def test_umap_learn_itself_embeds_the_features(tmp_path):
    """The real library (the dev extra installs it), no stand-in, on the tiny synthetic test set."""
    import umap

    assert umap.UMAP.__module__.startswith("umap.") and sys.modules["umap"] is umap
    result = run_script("main_umap.py", *ARGS, f"++output_dir={tmp_path}", "++name=real")
    assert result.returncode == 0, result.stderr
    png = tmp_path / "real" / "umap.png"
    assert result.stdout.strip().endswith(f"UMAP: {png}") and png.stat().st_size > 10_000
