"""No entry point runs code from a checkpoint it is given: every ``.ckpt`` is read with ``weights_only=True``. A file
whose unpickling would call anything beyond tensors, plain data and numpy's RNG array is refused with one ``error:``
line naming what it holds, before any of it runs; our own checkpoints (offline, online, CaSSLe) still load."""

import pickle
from pathlib import Path

import pytest
import torch

from solo_ossl.backbones import resnet18
from solo_ossl.export import main as export_main
from solo_ossl.utils.checkpoint import read_checkpoint
from solo_ossl.utils.errors import SoloOsslError

from .conftest import TINY, run_script


def plant(marker: str) -> None:
    """What the planted checkpoint calls when unpickled in full: a file appears."""
    Path(marker).write_text("code from the checkpoint ran")


class Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return plant, (self.marker,)


@pytest.fixture
def planted(tmp_path):
    """A checkpoint with a valid-looking state dict and an entry whose unpickling creates ``marker``."""
    marker = tmp_path / "ran.txt"
    path = tmp_path / "planted.ckpt"
    state = {f"backbone.{k}": v for k, v in resnet18(cifar=True, width=0.125).state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": Planted(marker)}, path)
    return path, marker


def assert_refused(result, path: Path, marker: Path) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: checkpoint {path} holds Python objects"), lines
    assert f"{__name__}.plant" in lines[0] and "python -m solo_ossl.export --trust-pickle" in lines[0]
    assert not marker.exists()


LINEAR = ["--config-name", "linear/embedded", "++backbone.width=0.125", "++progress_bar=false"]
PRETRAIN = ["--config-name", "pretrain/embedded/simclr", *TINY]


@pytest.mark.parametrize(
    "script, args",
    [
        ("main_linear.py", [*LINEAR, "++pretrained_ckpt={ckpt}"]),
        ("main_knn.py", [*LINEAR, "++pretrained_ckpt={ckpt}"]),
        ("main_umap.py", [*LINEAR, "++pretrained_ckpt={ckpt}"]),
        ("main_pretrain.py", [*PRETRAIN, "++pretrained_ckpt={ckpt}"]),
        ("main_pretrain.py", [*PRETRAIN, "++resume={ckpt}"]),
        ("main_pretrain.py", ["--config-name", "online/embedded/simclr_rals", *TINY, "++pretrained_ckpt={ckpt}"]),
        ("main_pretrain.py", ["--config-name", "online/embedded/simclr_rals", *TINY, "++resume={ckpt}"]),
        ("main_continual.py", [*PRETRAIN, "++pretrained_ckpt={ckpt}", "++data.last_task=2"]),
    ],
    ids=["linear", "knn", "umap", "pretrain-init", "pretrain-resume", "online-init", "online-resume", "continual"],
)
def test_every_entry_point_refuses_a_checkpoint_that_would_run_code(planted, tmp_path, script, args):
    path, marker = planted
    result = run_script(script, *(a.format(ckpt=path) for a in args), f"++output_dir={tmp_path / 'out'}")
    assert_refused(result, path, marker)


def test_the_export_tool_refuses_it_and_converts_it_only_when_trusted(planted, tmp_path, capsys):
    path, marker = planted
    with pytest.raises(SystemExit) as exit_code:
        export_main([str(path), str(tmp_path / "out")])
    assert exit_code.value.code == 2 and not marker.exists()
    assert capsys.readouterr().err.startswith(f"error: checkpoint {path} holds Python objects")
    # A user who trusts the file converts it once; the export then loads with no pickle at all.
    export_main(["--trust-pickle", str(path), str(tmp_path / "out")])
    assert marker.exists()
    exported = read_checkpoint(tmp_path / "out")["state_dict"]
    assert exported.keys() == torch.load(path, weights_only=False)["state_dict"].keys()


def test_a_truncated_checkpoint_is_one_line_too(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"backbone.w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SoloOsslError, match="is it complete"):
        read_checkpoint(path)


def test_our_checkpoints_hold_only_what_weights_only_loading_allows(tiny_config):
    """Offline (with the loop's RNG callback) and online (with the stream's RNG and memory) checkpoints load with
    ``weights_only=True`` and the numpy RNG array allowed, and with nothing else added."""
    from solo_ossl.run.pretrain import run_pretrain

    task1 = run_pretrain(tiny_config("pretrain/embedded/simclr", "++data.tasks=[1]", "++max_epochs=1", "++name=t1"))
    online = run_pretrain(
        tiny_config(
            "online/embedded/simclr_rals", f"++pretrained_ckpt={task1}", "++data.last_task=2", "++name=o",
            "++online.steps_per_batch=3",
        )
    )  # fmt: skip
    for path in (task1, online):
        assert read_checkpoint(path)["state_dict"]
        with pytest.raises(pickle.UnpicklingError):  # without the allowlist: only numpy's RNG array is extra
            torch.load(path, weights_only=True)
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) <= {
            "numpy.ndarray",
            "numpy._core.multiarray._reconstruct",
            "numpy.dtype",
        }
