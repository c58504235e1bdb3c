import pytest
import torch
from torch import nn

from solo_ossl.modules import batch_stats_without_update
from solo_ossl.online import SELECTIONS, expand_groups, rals_select, slclrs
from solo_ossl.utils.errors import SoloOsslError


def lr_momentum_sequence(optimizer, scheduler, steps):
    seq = []
    for _ in range(steps):
        g = optimizer.param_groups[0]
        seq.append((g["lr"], g["momentum"]))
        optimizer.step()
        scheduler.step()
    return seq


@pytest.mark.parametrize("steps,pct", [(10, 0.5), (20, 0.5), (50, 0.25)])
def test_slclrs_restarts_the_one_cycle_for_every_stream_batch(steps, pct):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reference_opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    reference = lr_momentum_sequence(
        reference_opt,
        torch.optim.lr_scheduler.OneCycleLR(
            reference_opt,
            max_lr=0.05,
            total_steps=steps,
            pct_start=pct,
            anneal_strategy="cos",
            base_momentum=0.85,
            max_momentum=0.95,
            div_factor=10.0,
            final_div_factor=1e4,
        ),
        steps,
    )
    for _ in range(3):  # three stream batches, one optimizer
        got = lr_momentum_sequence(optimizer, slclrs(optimizer, steps, 0.05, pct_start=pct), steps)
        assert got == reference
    assert reference[0] == (pytest.approx(0.005), pytest.approx(0.95))
    peak = max(range(steps), key=lambda i: reference[i][0])
    assert reference[peak][0] == pytest.approx(0.05, rel=1e-2) and reference[peak][1] == pytest.approx(0.85, rel=1e-2)
    assert reference[-1][0] < 1e-5 and reference[-1][1] == pytest.approx(0.95)


def test_rals_select_is_top_k_of_the_loss_increase():
    current = torch.tensor([1.0, 5.0, 3.0, 2.0, 9.0])
    anchor = torch.tensor([0.0, 5.0, 0.5, 3.0, 8.0])  # increases: 1, 0, 2.5, -1, 1.0 (tie at 1)
    assert set(rals_select(current, anchor, 1).tolist()) == {2}
    assert set(rals_select(current, anchor, 3).tolist()) == {0, 2, 4}
    generator = torch.Generator().manual_seed(0)
    c, a = torch.randn(384, generator=generator), torch.randn(384, generator=generator)
    assert set(rals_select(c, a, 256).tolist()) == set(torch.argsort(c - a, descending=True)[:256].tolist())


def test_rals_select_bad_k():
    with pytest.raises(SoloOsslError, match="cannot select k=5 of 4"):
        rals_select(torch.zeros(4), torch.zeros(4), 5)


def test_expand_groups():
    assert expand_groups(torch.tensor([2, 0]), 3).tolist() == [6, 7, 8, 0, 1, 2]


def test_scoring_leaves_batchnorm_running_stats_untouched():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(16, 4) * 3 + 2
    with torch.no_grad(), batch_stats_without_update(model):
        out = model(x)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # Batch statistics were used: outputs are standardized per feature.
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    assert model[1].training and model[1].track_running_stats
    model.eval()
    with torch.no_grad(), batch_stats_without_update(model):
        model(x)
    assert not model[1].training


# The scores of the paper's rule and of the interventions on it (docs/rals_mechanism.md), written out by hand.
NAIVE_KEYS = {
    "rals": lambda current, anchor: current - anchor,
    "rals_step_anchor": lambda current, anchor: current - anchor,  # RALS's key; its anchor moves (tested below)
    "rals_bottom": lambda current, anchor: anchor - current,
    "hardest": lambda current, anchor: current,
    "anchor_hardest": lambda current, anchor: anchor,
    "anchor_easiest": lambda current, anchor: -anchor,
}


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_every_registered_selection_rule_keeps_k_units_by_its_own_key(name):
    """Every rule of the registry, a new one included: a rule that chooses by score keeps the top k of its key (the
    hand-written one above where the rule is listed there, else its own ``score`` applied unit by unit), checked
    against a naive sort in Python; one that does not keeps k distinct units."""
    generator = torch.Generator().manual_seed(3)
    current, anchor = torch.rand(40, generator=generator) * 10, torch.rand(40, generator=generator) * 10
    rule = SELECTIONS[name]()
    chosen = rule.choose(current, anchor, 13).tolist()
    if not rule.chooses_by_score:
        assert len(set(chosen)) == 13 and all(0 <= i < 40 for i in chosen)
        return
    key = NAIVE_KEYS.get(name) or (lambda c, a: rule.score(torch.tensor([c]), torch.tensor([a])).item())
    naive = sorted(range(40), key=lambda i: key(current[i].item(), anchor[i].item()), reverse=True)[:13]
    assert sorted(chosen) == sorted(naive)


def test_the_step_anchor_rule_scores_each_step_against_the_model_one_step_behind(tiny_config):
    """rals_step_anchor: at local step t >= 2 the anchor is the model before step t - 1's update (at step 1, the model
    at the stream batch's start, as RALS's); the current model is the one after it."""
    from solo_ossl.online import train_stream_batch
    from solo_ossl.run.bare import bare_online_run

    from .test_online import ONLINE

    cfg = tiny_config(
        "online/embedded/simclr_rals", *ONLINE, "++online.k=24", "++online.selection=rals_step_anchor", "++eval.every=0"
    )
    run = bare_online_run(cfg)
    model, learner = run.model, run.learner
    batches = run.batches()
    for _ in range(2):  # the memory fills
        log, values = train_stream_batch(learner, model, run.optimizer, next(batches))
    snapshots, anchors = [], []
    rule = learner.selection
    select = rule.select

    def recording_select(method, step, v1, v2, k_units):
        snapshots.append({k: v.clone() for k, v in method.backbone.state_dict().items()})
        selected = select(method, step, v1, v2, k_units)
        anchors.append({k: v.clone() for k, v in rule.anchor["backbone"].state_dict().items()})
        return selected

    rule.select = recording_select
    log, values = train_stream_batch(learner, model, run.optimizer, next(batches))
    assert len(snapshots) == cfg.online.steps_per_batch >= 3
    for step in range(len(snapshots)):  # after step t's choice, the anchor is the model that step t scored
        assert all(torch.equal(anchors[step][k], snapshots[step][k]) for k in snapshots[step])
    assert not all(torch.equal(snapshots[1][k], snapshots[2][k]) for k in snapshots[1])  # the model moved
