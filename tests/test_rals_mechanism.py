"""benchmarks/rals_mechanism.py, the tables of docs/rals_mechanism.md, on a synthetic candidate log whose answers are
known: a rule that keeps the top-k of the current loss overlaps the current loss's top-k completely."""

import json
import sys
from pathlib import Path

import numpy as np

from benchmarks import rals_mechanism

CANDIDATES, KEPT, STREAM = 12, 6, 4


def synthetic_log(rule: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    classes = rals_mechanism.task_classes(Path("no-run-folder"))
    rows: dict[str, list] = {k: [] for k in ("stream_batch", "step", "is_stream", "label", "current", "anchor", "kept")}
    for batch in range(3):
        for step in range(2):
            current, anchor = rng.normal(size=CANDIDATES), rng.normal(size=CANDIDATES)
            order = np.argsort(-(current if rule == "hardest" else current - anchor), kind="stable")
            kept = np.zeros(CANDIDATES, bool)
            kept[order[:KEPT]] = True
            is_stream = np.arange(CANDIDATES) < STREAM
            label = np.where(is_stream, classes[1][0], classes[0][0])  # stream from task 2, memory from task 1
            for key, value in zip(rows, (batch, step, is_stream, label, current, anchor, kept), strict=True):
                rows[key].append(np.broadcast_to(value, CANDIDATES))
    log = {k: np.concatenate(v) for k, v in rows.items()}
    log.update(step_step=np.arange(6) % 2, step_grad_norm=np.ones(6), step_update_norm=np.full(6, 0.5))
    return log


def test_overlap_with_hardness_against_the_rule_that_made_the_choice():
    current_share, anchor_share, random_share = rals_mechanism.overlap_with_hardness(synthetic_log("hardest"))
    assert current_share == 1.0 and anchor_share < 1.0 and random_share == KEPT / CANDIDATES


def test_groups_split_stream_and_memory_by_the_task_a_candidate_came_from(tmp_path):
    log = synthetic_log("rals")
    run = tmp_path / "ours_10_seed0_mechanism"
    run.mkdir()
    np.savez(run / "online_candidates.npz", **log)  # the committed layout: the log beside result.json
    data = rals_mechanism.load(run)
    parts = rals_mechanism.groups(data)
    assert parts["stream"].sum() == 3 * 2 * STREAM
    assert parts["memory, the previous task"].sum() == 3 * 2 * (CANDIDATES - STREAM)
    assert not parts["memory, the current task"].any() and not parts["memory, older tasks"].any()


def test_the_script_writes_a_table_per_logged_run(tmp_path, monkeypatch):
    run = tmp_path / "ours_10_seed0_mechanism"
    run.mkdir()
    np.savez(run / "online_candidates.npz", **synthetic_log("hardest"))
    (run / "result.json").write_text(json.dumps({"top1": 24.5, "knn_top1": 20.25, "train_seconds": 600.0}))
    out = tmp_path / "tables.md"
    monkeypatch.setattr(sys, "argv", ["rals_mechanism.py", str(tmp_path), "--write", str(out)])
    rals_mechanism.main()
    text = out.read_text()
    assert "### ours_10_seed0_mechanism" in text
    assert "1.000 are among the top-k of the current loss" in text
    assert "| ours_10_seed0_mechanism | 24.50 | 20.25 | – | 600 |" in text


def test_stream_persistence_of_a_rule_that_keeps_the_same_samples_and_of_one_that_rotates():
    # Six of twelve candidates kept; the stream is candidates 0-3. A keeps stream 0-1, B keeps stream 2-3.
    a = np.isin(np.arange(CANDIDATES), [0, 1, 4, 5, 6, 7])
    b = np.isin(np.arange(CANDIDATES), [2, 3, 8, 9, 10, 11])
    log = synthetic_log("rals")
    log["kept"][:] = np.concatenate([a, a] * 3)  # each stream batch: the same samples at both its steps
    assert rals_mechanism.stream_persistence(log, first_batch=0) == {
        "kept_again": 1.0,
        "dropped_then_kept": 0.0,
        "count_std": 1.0,  # stream samples trained 2, 2, 0, 0 times
    }
    log["kept"][:] = np.concatenate([a, b] * 3)  # the other half of the stream at the second step
    assert rals_mechanism.stream_persistence(log, first_batch=0) == {
        "kept_again": 0.0,
        "dropped_then_kept": 1.0,
        "count_std": 0.0,
    }


def test_same_class_pairs_against_a_hand_count():
    log = synthetic_log("rals")
    log["label"][:] = np.tile(np.arange(CANDIDATES) % 3, 6)  # 4 candidates of each of 3 classes
    log["kept"][:] = np.tile(np.arange(CANDIDATES) < KEPT, 6)  # candidates 0-5: classes 0,1,2,0,1,2
    kept_pairs, random_pairs = rals_mechanism.same_class_pairs(log)
    assert kept_pairs == 3.0  # one pair per class
    assert random_pairs == 3 * 6 * KEPT * (KEPT - 1) / (CANDIDATES * (CANDIDATES - 1))  # 18 pairs x 30/132


def test_loss_trajectory_averages_the_anchor_loss_per_window_of_stream_batches():
    log = synthetic_log("rals")  # 3 stream batches x 2 steps x 12 candidates
    log["anchor"][:] = np.repeat([1.0, 2.0, 4.0], 2 * CANDIDATES)
    log["anchor"][: CANDIDATES // 2] = np.nan  # unscored rows count in no mean
    first = (18 * 1.0 + 24 * 2.0) / 42  # batch 0: 18 scored rows, batch 1: 24; a mean over rows
    assert rals_mechanism.loss_trajectory(log, window=2) == [first, 4.0]
