"""benchmarks/heldout_probe.py (issue 46's sharp test) on synthetic rows whose answers are known: a rule whose held-out
loss rises by a fixed amount per stream batch reports that rise, split at the first task's end as a naive loop would,
and the paired difference against RALS is exact."""

import csv
import gzip
import json
import math

import pytest

from benchmarks import heldout_probe

STEPS, BATCHES, FIRST_TASK_END = 3, 6, 3


def write_run(root, strategy: str, seed: int, rise: float, top1: float, after: float | None = None) -> None:
    """The held-out loss rises by ``rise`` per stream batch of the first task and by ``after`` (default: the same)
    per batch after it."""
    run = root / f"{strategy}_10_seed{seed}_heldout"
    run.mkdir(parents=True)
    rows, loss = [], 5.0
    for batch in range(BATCHES):
        for step in range(STEPS):
            per_batch = rise if batch < FIRST_TASK_END or after is None else after
            loss += per_batch / STEPS  # the batch's rise, spread over its steps
            rows.append({"stream_batch": batch, "step": step, "loss": 1.0, "heldout_probe_loss": loss})
    ends = {str(FIRST_TASK_END): 2, str(BATCHES): 3}
    (run / "stream.json").write_text(json.dumps({"tasks": [2, 3], "task_end_batches": ends}))
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
    assert "| random selection | rise | +0.0300, +0.0400, +0.0500 | +0.0400 | [+0.0152, +0.0648] |" in paired
    assert "| random selection | top-1 | -3.00, -3.00, -3.00 | -3.00 | [-3.00, -3.00] |" in paired
    assert "| random selection | 3 | +0.0700 ± 0.0100 |" in text
    assert "| RALS, anchor every step | 0 | not run |" in text


def test_the_rise_is_split_where_the_held_out_task_stops_streaming(tmp_path):
    write_run(tmp_path, "ours", 0, rise=-0.06, top1=30, after=0.09)
    run = heldout_probe.collect(tmp_path, "heldout")["ours"][0]
    # Naive reference: the batch rises of batches 1..5 (batch 0 has no start), split at the first task's end.
    rises = {batch: (-0.06 if batch < FIRST_TASK_END else 0.09) for batch in range(1, BATCHES)}
    streaming = [r for b, r in rises.items() if b < FIRST_TASK_END]
    memory = [r for b, r in rises.items() if b >= FIRST_TASK_END]
    assert run["rise_streaming"] == pytest.approx(sum(streaming) / len(streaming))
    assert run["rise_memory"] == pytest.approx(sum(memory) / len(memory))
    assert run["rise"] == pytest.approx(sum(rises.values()) / len(rises))


def test_a_stream_of_the_held_out_task_alone_has_no_after_phase(tmp_path):
    write_run(tmp_path, "ours", 0, rise=0.03, top1=30)
    (tmp_path / "ours_10_seed0_heldout" / "stream.json").write_text(json.dumps({"task_end_batches": {"6": 2}}))
    run = heldout_probe.collect(tmp_path, "heldout")["ours"][0]
    assert run["rise_streaming"] == pytest.approx(0.03) and math.isnan(run["rise_memory"])


def test_a_run_without_its_stream_record_is_refused(tmp_path):
    write_run(tmp_path, "ours", 0, rise=0.03, top1=30)
    (tmp_path / "ours_10_seed0_heldout" / "stream.json").unlink()
    with pytest.raises(SystemExit, match="has no stream.json"):
        heldout_probe.collect(tmp_path, "heldout")


def test_a_run_without_the_probe_is_refused(tmp_path):
    run = tmp_path / "ours_10_seed0_heldout"
    run.mkdir()
    (run / "online_steps.csv.gz").write_bytes(gzip.compress(b"stream_batch,step,heldout_probe_loss\n0,0,\n"))
    (run / "result.json").write_text(json.dumps({"top1": 1.0, "knn_top1": 1.0}))
    with pytest.raises(SystemExit, match="without the held-out probe"):
        heldout_probe.collect(tmp_path, "heldout")
