"""The paper's online algorithm inside a run, through the Lightning-free step (``solo_ossl.online.algorithm``) and
its public seams (selection rules, the optimizer, the backbone's inputs): which candidates RALS trains on, the
anchor, the lr and momentum of every local step, and when a stream batch enters the memory."""

import copy
import math

import pytest
import torch

from solo_ossl.modules import batch_stats_without_update
from solo_ossl.online.algorithm import train_stream_batch
from solo_ossl.online.selection import RalsSelection, expand_groups
from solo_ossl.run.bare import bare_online_run

from .test_online import ONLINE


class CheckedRals(RalsSelection):
    """RALS that, at every scoring step, also computes the expected choice independently: the current model's and
    a deep copy of the model taken at the stream batch's start (not the rule's anchor) unit losses on the same
    views, their top-k. It records the candidates' views, the expected kept samples and the anchor checks."""

    def __init__(self) -> None:
        super().__init__()
        self.reference = None
        self.steps: list[dict] = []
        self.anchor_matches: list[bool] = []

    def start_stream_batch(self, method) -> None:
        super().start_stream_batch(method)
        self.reference = copy.deepcopy(method)
        live = {f"{n}.{k}": v for n in method.scored_modules for k, v in method.get_submodule(n).state_dict().items()}
        weights = self.anchor.weights()
        self.anchor_matches.append(
            set(weights) >= set(live) and all(torch.equal(weights[k], v) for k, v in live.items())
        )

    def select(self, method, step, v1, v2, k_units):
        chosen = super().select(method, step, v1, v2, k_units)
        record = {"step": step, "v1": v1.clone(), "kept_units": chosen.units.clone()}
        if step > 0:
            with torch.no_grad(), batch_stats_without_update(method), batch_stats_without_update(self.reference):
                current = method.unit_losses(method(v1), method(v2))
                anchor = self.reference.unit_losses(self.reference(v1), self.reference(v2))
            record["expected_units"] = torch.topk(current - anchor, k_units).indices
        self.steps.append(record)
        return chosen


def checked_run(tiny_config, config: str, *overrides: str, batches: int = 4):
    """A bare online run with ``CheckedRals``; per stream batch, the rule's records and the views each local step
    trained on (the backbone's last two inputs when the step ends)."""
    run = bare_online_run(tiny_config(config, *ONLINE, "++online.k=24", *overrides))
    rule = CheckedRals()
    run.learner.selection = rule
    inputs = []
    run.model.backbone.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    per_batch = []
    for _, batch in zip(range(batches), run.batches(), strict=False):
        rule.steps.clear()
        trained = []
        log, values = train_stream_batch(
            run.learner, run.model, run.optimizer, batch, on_step=lambda record, out=trained: out.append(inputs[-2])
        )
        per_batch.append((list(rule.steps), trained))
    return run, rule, per_batch


@pytest.mark.parametrize(
    "config,group", [("online/embedded/simclr_rals", 1), ("online/embedded/barlow_rals", 4)], ids=["sample", "group"]
)
def test_rals_trains_on_exactly_the_top_k_of_current_minus_anchor(tiny_config, config, group):
    run, rule, per_batch = checked_run(tiny_config, config, f"++method.group_size={group}")
    scored = 0
    for steps, trained in per_batch[2:]:  # from the third stream batch the memory holds 32: 48 candidates, k = 24
        assert len(steps) == len(trained) == 3
        for record, views in zip(steps, trained, strict=True):
            if record["step"] > 0:
                assert set(record["kept_units"].tolist()) == set(record["expected_units"].tolist())
                scored += 1
            kept = expand_groups(record["kept_units"], group)
            assert views.shape[0] == 24 and torch.equal(views, record["v1"][kept])  # the kept units' samples
    assert scored == 2 * (3 - 1)


def test_the_anchor_is_the_whole_scored_model_at_each_stream_batch_start(tiny_config):
    run, rule, _ = checked_run(tiny_config, "online/embedded/simclr_rals", batches=4)
    assert rule.anchor_matches == [True] * 4  # every tensor, at each start (refreshed, not kept from the first)
    weights = rule.anchor.weights()
    live = {f"{n}.{k}": v for n in run.model.scored_modules for k, v in run.model.get_submodule(n).state_dict().items()}
    assert any(not torch.equal(weights[k], v) for k, v in live.items())  # the model moved after the last refresh


def one_cycle(step: int, total: int, pct_start: float, high: float, div: float, final_div: float) -> tuple:
    """The cosine one-cycle schedule's lr and momentum (0.95 -> 0.85 -> 0.95) applied at optimizer step ``step``:
    warm-up over the first ``pct_start * total - 1`` steps from high / div to high, then annealing to
    high / div / final_div at the last step (Smith & Topin's policy, as PyTorch defines its phases)."""

    def cos_between(start, end, fraction):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))

    warm_end, last = pct_start * total - 1, total - 1
    low, lowest = high / div, high / div / final_div
    if step <= warm_end:
        fraction = step / warm_end
        return cos_between(low, high, fraction), cos_between(0.95, 0.85, fraction)
    fraction = (step - warm_end) / (last - warm_end)
    return cos_between(high, lowest, fraction), cos_between(0.85, 0.95, fraction)


@pytest.mark.parametrize("steps,pct_start,batches", [(10, 0.5, 2), (50, 0.25, 1)], ids=["pct_start", "50-step rule"])
def test_every_local_step_applies_the_one_cycle_lr_and_momentum(tiny_config, steps, pct_start, batches):
    cfg = tiny_config(
        "online/embedded/simclr", *ONLINE, f"++online.steps_per_batch={steps}", "++online.max_lr=0.8"
    )  # the online configs give pct_start 0.25 at 50 steps (the paper's Sec. 5.3)
    run = bare_online_run(cfg)
    applied = []
    run.optimizer.register_step_pre_hook(
        lambda optimizer, args, kwargs: applied.append([(g["lr"], g["momentum"]) for g in optimizer.param_groups])
    )
    batches_of_stream = run.batches()
    for _ in range(batches):  # with two stream batches, the cycle restarts
        log, values = train_stream_batch(run.learner, run.model, run.optimizer, next(batches_of_stream))
    assert len(applied) == batches * steps
    names = [g.get("name") for g in run.optimizer.param_groups]
    for i, groups in enumerate(applied):
        for name, (lr, momentum) in zip(names, groups, strict=True):
            high = cfg.optimizer.classifier_lr if name == "classifier" else 0.8  # the classifier's own lr
            expected_lr, expected_momentum = one_cycle(i % steps, steps, pct_start, high, 10.0, 1e4)
            assert lr == pytest.approx(expected_lr, rel=1e-9, abs=1e-15)
            assert momentum == pytest.approx(expected_momentum, rel=1e-9)
    assert "classifier" in names and cfg.optimizer.classifier_lr != 0.8


def test_a_stream_batch_enters_the_memory_only_after_its_n_steps(tiny_config):
    run = bare_online_run(
        tiny_config("online/embedded/simclr_rals", *ONLINE, "++online.k=24", "++online.memory.store=indices")
    )
    drawn = []
    for _, batch in zip(range(6), run.batches(), strict=False):
        seen_before = run.learner.memory.num_seen
        drawn.clear()
        log, values = train_stream_batch(
            run.learner,
            run.model,
            run.optimizer,
            batch,
            on_step=lambda record: drawn.append(run.learner.memory.take(record["draw"].slots)[0]),
        )
        stream = set(batch[0].tolist())
        assert all(not stream & set(x.tolist()) for x in drawn)  # never drawn within its own stream batch
        assert run.learner.memory.num_seen == seen_before + len(stream)  # ... and added after its N steps
