"""The GPU check's dry run (``bash benchmarks/gpu_check.sh --dry-run``): every step on the CPU at tiny sizes, so that
the one command is known to work before a GPU is lent. Slow (minutes): run with ``-m slow``."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_the_gpu_check_dry_run_writes_its_results_file(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert set(steps) == {"env", "gpu_tests", "throughput", "imagenet", "syncs", "full"} and report["dry_run"]
    assert all(s["rc"] == 0 and s["command"] for s in steps.values())
    assert steps["env"]["result"]["versions"]["torch"]
    throughput = steps["throughput"]["result"]
    assert throughput["rals"]["s_per_step"] > 0 and throughput["rals_over_no_rals_step_time"] > 0
    assert 0 <= throughput["no_rals"]["data_share"] <= 1
    assert throughput["kornia_rals"]["s_per_step"] > 0  # the augmentation's before, in the same process
    assert steps["imagenet"]["result"]["torch"]["trained_per_s"] > 0
    assert steps["syncs"]["result"]["rals"]["per_local_step"] >= 0
    full = steps["full"]["result"]
    assert full["stream_batches_done"] >= 1 and full["train_s"] > 0
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "RALS / no-RALS step time" in markdown and "Full BT+RALS online run" in markdown
