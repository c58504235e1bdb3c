"""Every file of the model zoo is the one recorded in zoo/README.md (its sha256) and still gives its recorded kNN
top-1 on the embedded test set (within 1.0 point: other CPU kinds compute other last bits); the width-1 backbone
loads into torchvision's resnet18 by the README's recipe and computes this library's features."""

import hashlib
import re

import pytest

from solo_ossl.args import load_linear_config
from solo_ossl.run.linear import run_knn
from solo_ossl.utils.checkpoint import read_checkpoint, weights_fingerprint

from .conftest import ROOT

ZOO = ROOT / "zoo"


def recorded() -> list[dict]:
    rows = []
    for line in (ZOO / "README.md").read_text().splitlines():
        match = re.match(
            r"\| `([\w./-]+\.safetensors)` \| `([0-9a-f]{64})` \| `([0-9a-f]{16})` \|.*\| ([\d.]+) \| ([\d.]+) \|$",
            line,
        )
        if match:
            rows.append(
                {
                    "file": match[1],
                    "sha256": match[2],
                    "fingerprint": match[3],
                    "linear": float(match[4]),
                    "knn": float(match[5]),
                }
            )
    return rows


@pytest.mark.long
def test_every_zoo_file_is_recorded_and_reproduces_its_knn_top1():
    rows = recorded()
    assert {r["file"] for r in rows} == {str(p.relative_to(ZOO)) for p in ZOO.glob("**/*.safetensors")} and rows
    for row in rows:
        path = ZOO / row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"], row["file"]
        # the recorded fingerprint is the file's own, and the weights still hash to it
        assert (
            read_checkpoint(path)["exported"]["fingerprint"]
            == row["fingerprint"]
            == weights_fingerprint(path, ("backbone.",))
        ), row["file"]
        cfg = load_linear_config(
            ["--config-name", "linear/embedded", f"++pretrained_ckpt={path}", "++progress_bar=false"]
        )
        knn = run_knn(cfg)["knn_top1"]
        assert abs(knn - row["knn"]) <= 1.0, (row["file"], knn, row["knn"])


def test_the_width_1_backbone_loads_into_torchvision_by_the_readme_recipe():
    import torch

    from solo_ossl.backbones import resnet18
    from solo_ossl.utils.checkpoint import backbone_state

    from .test_checkpoints import recipe_features

    folder = ZOO / "barlow-embedded-task1-w1"
    ours = resnet18(cifar=True, width=1.0)
    ours.load_state_dict(backbone_state(read_checkpoint(folder), folder))
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours.eval()(images)
    assert torch.allclose(recipe_features(folder, images), expected, rtol=1e-4, atol=1e-4)
