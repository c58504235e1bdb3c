"""The package's command-line tools (``python -m solo_ossl.*``) follow argparse's conventions; the precision line says
where a run computes on any OS; the CIFAR-100 npz builder reads the official archive."""

import importlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

import solo_ossl
from solo_ossl.data.cifar_npz import main as cifar_npz_main
from solo_ossl.utils import device
from solo_ossl.utils.errors import SoloOsslError


def tools() -> list[str]:
    """Every module of the package that runs as ``python -m``: found, not listed, so a new tool is covered."""
    package = Path(solo_ossl.__file__).parent
    return sorted(
        ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for path in package.rglob("*.py")
        if 'if __name__ == "__main__"' in path.read_text()
    )


def test_the_tools_are_found():
    assert {
        "solo_ossl.compare.__main__",
        "solo_ossl.export",
        "solo_ossl.data.cifar_npz",
        "solo_ossl.data.embedded.derive",
    } <= set(tools())


@pytest.mark.parametrize("tool", tools())
def test_every_tool_takes_help_and_exits_0(tool, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(tool).main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {tool.removesuffix('.__main__')}"), out[:200]


@pytest.mark.parametrize(
    "precision, native, expected",
    [
        ("auto", True, "precision: bf16-mixed (auto: the device runs bf16 natively)"),
        ("auto", False, "precision: 32-true (auto: this CPU has no native bf16 (avx512_bf16 or AMX)"),
        ("32", True, "precision: 32-true (precision=32 as configured)"),
    ],
)
def test_the_precision_line_says_what_auto_chose_and_why(monkeypatch, precision, native, expected):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    line = device.describe_run_device(precision, "cpu")
    assert line.startswith(f"device: cpu ({device.cpu_name()}, {device.usable_cores()} cores); ") and expected in line


def test_the_precision_line_works_without_sched_getaffinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: the line counts all cores there."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert device.usable_cores() == (os.cpu_count() or 1)
    assert f"{os.cpu_count()} cores" in device.describe_run_device("auto", "cpu")


def official_archive(path, per_split: dict[str, int]) -> dict:
    """A small archive in the official CIFAR-100 python layout (pickled dicts with bytes keys, rows of CHW pixels)."""
    rng = np.random.default_rng(0)
    parts = {}
    with tarfile.open(path, "w:gz") as tar:
        for name, n in per_split.items():
            part = {
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                b"fine_labels": rng.integers(0, 100, n).tolist(),
                b"coarse_labels": rng.integers(0, 20, n).tolist(),
            }
            parts[name] = part
            data = pickle.dumps(part, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        meta = pickle.dumps(
            {b"fine_label_names": [f"fine{i}" for i in range(100)], b"coarse_label_names": [f"c{i}" for i in range(20)]}
        )
        info = tarfile.TarInfo("cifar-100-python/meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return parts


def test_the_npz_builder_writes_what_the_npz_dataset_reads(tmp_path, capsys):
    from solo_ossl.data.datasets import _load_npz

    parts = official_archive(tmp_path / "cifar-100-python.tar.gz", {"train": 6, "test": 4})
    cifar_npz_main([str(tmp_path / "cifar-100-python.tar.gz"), str(tmp_path / "c100.npz")])
    assert "++data.dataset=npz ++data.data_dir=" in capsys.readouterr().out
    with np.load(tmp_path / "c100.npz") as f:
        assert f["x_train"].shape == (6, 32, 32, 3) and f["x_train"].dtype == np.uint8
        # pixel (row 1, column 2) of image 0, channel G: the official layout is 1024 R, then G, then B values
        assert f["x_train"][0, 1, 2, 1] == parts["train"][b"data"][0, 1024 + 32 + 2]
        assert f["y_test"].tolist() == parts["test"][b"fine_labels"]
        assert f["coarse_train"].tolist() == parts["train"][b"coarse_labels"] and f["fine_label_names"][3] == "fine3"
    train, test = _load_npz(tmp_path / "c100.npz")
    assert len(train) == 6 and len(test) == 4


def test_the_npz_builder_refuses_an_archive_whose_pickle_asks_for_code(tmp_path):
    from solo_ossl.data.cifar_npz import cifar100_arrays

    class Planted:
        def __reduce__(self):
            return os.system, ("true",)

    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tar:
        data = pickle.dumps({"data": Planted()})
        info = tarfile.TarInfo("cifar-100-python/train")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(SoloOsslError, match="asks for posix.system|asks for os.system"):
        cifar100_arrays(tmp_path / "a.tar.gz")
