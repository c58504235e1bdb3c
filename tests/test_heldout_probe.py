"""benchmarks/heldout_probe.py (issue 46's sharp test) on synthetic rows whose answers are known: a rule whose held-out
loss rises by a fixed amount per stream batch reports that rise, and the paired difference against RALS is exact."""

import csv
import gzip
import json

import pytest

from benchmarks import heldout_probe

STEPS, BATCHES = 3, 4


def write_run(root, strategy: str, seed: int, rise: float, top1: float) -> None:
    run = root / f"{strategy}_10_seed{seed}_heldout"
    run.mkdir(parents=True)
    rows, loss = [], 5.0
    for batch in range(BATCHES):
        for step in range(STEPS):
            loss += rise / STEPS  # the batch's rise, spread over its steps
            rows.append({"stream_batch": batch, "step": step, "loss": 1.0, "heldout_probe_loss": loss})
    with gzip.open(run / "online_steps.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (run / "result.json").write_text(json.dumps({"top1": top1, "knn_top1": top1 - 5}))


def test_rises_curves_and_paired_differences_are_read_from_the_rows(tmp_path):
    for seed in range(3):
        write_run(tmp_path, "ours", seed, rise=0.03, top1=30 + seed)
        write_run(tmp_path, "ours_random", seed, rise=0.06 + 0.01 * seed, top1=27 + seed)
    runs = heldout_probe.collect(tmp_path, "heldout")
    assert set(runs) == {"ours", "ours_random"} and set(runs["ours"]) == {0, 1, 2}
    assert runs["ours"][0]["rise"] == pytest.approx(0.03)
    assert runs["ours_random"][2]["rise"] == pytest.approx(0.08)
    assert runs["ours"][1]["curve"] == pytest.approx([0.01, 0.02, 0.03])
    text = heldout_probe.report(runs, "heldout")
    paired = text.split("Paired")[1]
    # rise and top-1, random − RALS: per seed, mean, interval (the rises differ by seed; the top-1s exactly by -3).
    assert "| random selection | +0.0300, +0.0400, +0.0500 | +0.0400 | [+0.0152, +0.0648] |" in paired
    assert "| -3.00, -3.00, -3.00 | -3.00 | [-3.00, -3.00] |" in paired
    assert "| random selection | 3 | +0.0700 ± 0.0100 |" in text
    assert "| RALS, anchor every step | 0 | not run |" in text


def test_a_run_without_the_probe_is_refused(tmp_path):
    run = tmp_path / "ours_10_seed0_heldout"
    run.mkdir()
    (run / "online_steps.csv.gz").write_bytes(gzip.compress(b"stream_batch,step,heldout_probe_loss\n0,0,\n"))
    (run / "result.json").write_text(json.dumps({"top1": 1.0, "knn_top1": 1.0}))
    with pytest.raises(SystemExit, match="without the held-out probe"):
        heldout_probe.collect(tmp_path, "heldout")
