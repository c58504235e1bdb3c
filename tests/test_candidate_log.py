"""The candidate log of an instrumented online run (``online.log_candidates``, docs/rals_mechanism.md): one row per
candidate and local step, RALS's kept rows are the top-k of current - anchor, and every step has its gradient and
update norm."""

import numpy as np
import pytest

from solo_ossl.run.pretrain import run_pretrain

from .test_online import HALF, ONLINE

K = 24


def logged_run(tiny_config, tmp_path, *overrides: str) -> dict:
    cfg = tiny_config(
        "online/embedded/simclr_rals", *ONLINE, HALF, f"++online.k={K}", "++online.log_candidates=true", *overrides
    )
    run_pretrain(cfg)
    return dict(np.load(tmp_path / cfg.name / "online_candidates.npz"))


@pytest.mark.parametrize("selection", ["rals", "random"])
def test_candidate_log_holds_every_candidate_its_scores_and_the_step_norms(tiny_config, tmp_path, selection):
    log = logged_run(tiny_config, tmp_path, f"++online.selection={selection}")
    steps = np.unique(np.stack([log["stream_batch"], log["step"]]), axis=1).T
    assert len(steps) == len(log["step_grad_norm"]) == 10 * 3  # 10 stream batches of 16, 3 local steps each
    scored_steps = 0
    for batch, step in steps:
        rows = (log["stream_batch"] == batch) & (log["step"] == step)
        assert log["is_stream"][rows].sum() == 16  # the stream batch is a candidate at every local step
        current, anchor, kept = log["current"][rows], log["anchor"][rows], log["kept"][rows]
        assert kept.sum() == min(K, rows.sum())  # all of them while the memory fills up
        if np.isnan(current).all():  # not scored: step 0 (the model is the anchor) or nothing to choose from
            continue
        scored_steps += 1
        if selection == "rals":
            score = current - anchor
            assert score[kept].min() >= score[~kept].max()
    assert scored_steps > 0
    assert np.isfinite(log["step_grad_norm"]).all() and (log["step_grad_norm"] > 0).all()
    assert np.isnan(log["step_update_norm"][0]) and (log["step_update_norm"][1:] >= 0).all()
