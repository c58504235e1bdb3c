"""Every file of the model zoo is the one recorded in zoo/README.md (its sha256) and still gives its recorded kNN
top-1 on the embedded test set (within 1.0 point: other CPU kinds compute other last bits)."""

import hashlib
import re

from solo_ossl.args import load_linear_config
from solo_ossl.run.linear import run_knn

from .conftest import ROOT

ZOO = ROOT / "zoo"


def recorded() -> list[dict]:
    rows = []
    for line in (ZOO / "README.md").read_text().splitlines():
        match = re.match(r"\| `([\w.-]+\.safetensors)` \| `([0-9a-f]{64})` \|.*\| ([\d.]+) \| ([\d.]+) \|$", line)
        if match:
            rows.append({"file": match[1], "sha256": match[2], "linear": float(match[3]), "knn": float(match[4])})
    return rows


def test_every_zoo_file_is_recorded_and_reproduces_its_knn_top1():
    rows = recorded()
    assert {r["file"] for r in rows} == {p.name for p in ZOO.glob("*.safetensors")} and rows
    for row in rows:
        path = ZOO / row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"], row["file"]
        cfg = load_linear_config(
            ["--config-name", "linear/embedded", f"++pretrained_ckpt={path}", "++progress_bar=false"]
        )
        knn = run_knn(cfg)["knn_top1"]
        assert abs(knn - row["knn"]) <= 1.0, (row["file"], knn, row["knn"])
