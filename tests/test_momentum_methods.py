"""BYOL, SimSiam and MoCo v3: their losses against naive loops (solo-learn's definitions), their per-unit losses
against the batch loss, the momentum target's EMA inside an online step with RALS, CaSSLe over two tasks, and a
bitwise resume mid-stream with the momentum target in the checkpoint."""

import math

import pytest
import torch

from solo_ossl.args import load_config
from solo_ossl.losses import byol_loss_func, mocov3_loss_func, simsiam_loss_func
from solo_ossl.methods import METHODS
from solo_ossl.modules import cosine_tau
from solo_ossl.online import train_stream_batch
from solo_ossl.online.slclrs import stream_batch_schedule
from solo_ossl.run.bare import bare_online_run
from solo_ossl.run.continual import run_continual
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.run.validate import validate_pretrain

from .conftest import TINY
from .test_online import ONLINE

METHOD_NAMES = ("byol", "simsiam", "mocov3")
SMALL = ["++method.pred_hidden_dim=32"]


def rows(generator, n=6, d=5):
    return torch.randn(n, d, generator=generator, dtype=torch.float64), torch.randn(
        n, d, generator=generator, dtype=torch.float64
    )


def naive_cos(a, b) -> float:
    return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))


def test_byol_and_simsiam_losses_match_their_definitions():
    p, z = rows(torch.Generator().manual_seed(0))
    byol = sum(2 - 2 * naive_cos(p[i], z[i]) for i in range(len(p))) / len(p)
    simsiam = sum(-naive_cos(p[i], z[i]) for i in range(len(p))) / len(p)
    assert byol_loss_func(p, z).item() == pytest.approx(byol, rel=1e-5)  # computed in fp32
    assert simsiam_loss_func(p, z).item() == pytest.approx(simsiam, rel=1e-5)
    p.requires_grad_(True)
    z.requires_grad_(True)
    byol_loss_func(p, z).backward()
    assert z.grad is None and p.grad is not None  # stop-gradient on the target


def test_mocov3_loss_matches_its_definition():
    q, k = rows(torch.Generator().manual_seed(1))
    t = 0.2
    total = 0.0
    for i in range(len(q)):
        logits = [naive_cos(q[i], k[j]) / t for j in range(len(k))]
        total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
    assert mocov3_loss_func(q, k, t).item() == pytest.approx(total / len(q) * 2 * t, rel=1e-5)


def method(name: str, *overrides: str):
    cfg = load_config(["--config-name", f"online/embedded/{name}_rals", *TINY, *SMALL, *overrides])
    torch.manual_seed(0)
    return METHODS[name](cfg, 10, (0.5,) * 3, (0.25,) * 3)


# The batch loss is solo-learn's: BYOL and MoCo v3 sum the two view directions, SimSiam averages them; a unit's loss
# is both directions summed, so the units' mean is the batch loss (BYOL, MoCo v3) or twice it (SimSiam).
UNIT_MEAN_OVER_BATCH = {"byol": 1.0, "simsiam": 2.0, "mocov3": 1.0}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_per_unit_losses_average_to_the_batch_loss(name):
    model = method(name)
    views = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        out1, out2 = model(views[0]), model(views[1])
        units = model.unit_losses(out1, out2)
        assert units.shape == (8,)
        assert units.mean().item() == pytest.approx(
            UNIT_MEAN_OVER_BATCH[name] * model.ssl_loss(out1, out2).item(), rel=1e-5
        )


@pytest.mark.parametrize("name", ["byol", "mocov3"])
def test_an_online_step_with_rals_trains_the_model_and_moves_the_target_only_by_its_ema(tiny_config, name):
    cfg = tiny_config(f"online/embedded/{name}_rals", *ONLINE, *SMALL, "++online.k=24", "++momentum.base_tau=0.9")
    run = bare_online_run(cfg)
    model, learner = run.model, run.learner
    pairs = [(o, t) for o, t in model.momentum_pairs]
    batches = run.batches()
    for _ in range(2):  # the memory fills
        log, values = train_stream_batch(learner, model, run.optimizer, next(batches))
    targets = [[p.detach().clone() for p in target.parameters()] for _, target in pairs]
    online_before = [p.detach().clone() for p in model.backbone.parameters()]
    checked = []

    def check(record):
        tau = cosine_tau(learner.local_steps - 1, learner.total_local_steps, 0.9, 1.0)
        for i, (online, target) in enumerate(pairs):
            for j, (o, t) in enumerate(zip(online.parameters(), target.parameters(), strict=True)):
                expected = tau * targets[i][j] + (1 - tau) * o.detach()
                torch.testing.assert_close(t, expected, rtol=0, atol=1e-6)
                targets[i][j] = t.detach().clone()
                assert t.grad is None
        checked.append(record["selected"].kept is not None)

    log, values = train_stream_batch(learner, model, run.optimizer, next(batches), on_step=check)
    assert checked == [True] * 3  # every step selected k of the candidates
    assert any(not torch.equal(a, b) for a, b in zip(online_before, model.backbone.parameters(), strict=True))


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_cassle_over_two_tasks_and_a_bitwise_resume_mid_stream(tiny_config, tmp_path, name):
    task1 = run_pretrain(
        tiny_config(f"pretrain/embedded/{name}", *SMALL, "++data.tasks=[1]", "++max_epochs=1", "++name=t1")
    )
    cassle = tiny_config(
        f"pretrain/embedded/{name}",
        *SMALL,
        "++regime=cassle",
        "++cassle.proj_hidden_dim=32",
        "++max_epochs=1",
        "++data.last_task=3",
        f"++pretrained_ckpt={task1}",
        "++name=cassle",
    )
    finals = run_continual(cassle)
    state = torch.load(finals[-1], weights_only=False)["state_dict"]
    assert len(finals) == 2 and any(k.startswith("distiller.predictor.") for k in state)

    online = [*ONLINE, *SMALL, "++data.synthetic_per_class=16", "++online.k=24", "++eval.every=0"]
    online += [f"++pretrained_ckpt={task1}", "++online.skip_first_task=true"]
    full = torch.load(
        run_pretrain(tiny_config(f"online/embedded/{name}_rals", *online, "++name=full")), weights_only=False
    )
    middle = tmp_path / "full" / "checkpoints" / "task3.ckpt"  # the end of task 3: mid-stream
    assert torch.load(middle, weights_only=False)["online"]["position"] < full["online"]["position"]
    resumed_cfg = tiny_config(f"online/embedded/{name}_rals", *online, "++name=resumed", f"++resume={middle}")
    resumed = torch.load(run_pretrain(resumed_cfg), weights_only=False)["state_dict"]
    assert full["state_dict"].keys() == resumed.keys()
    assert (name == "simsiam") != any(k.startswith("momentum_backbone.") for k in resumed)
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed[key]), key


@pytest.mark.parametrize("dataset", ["embedded", "cifar100"])
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_config_of_the_new_methods_validates(dataset, name):
    for config in (f"pretrain/{dataset}/{name}", f"online/{dataset}/{name}", f"online/{dataset}/{name}_rals"):
        cfg = load_config(["--config-name", config])
        validate_pretrain(cfg)
        assert cfg.method.name == name


@pytest.mark.parametrize("budget", [0.0, 0.45])
def test_the_tau_schedule_spans_the_steps_the_stream_plans(tiny_config, budget):
    """tau's cosine runs over the stream's planned optimizer steps: stream batches x N with a fixed N; in the
    time-budget mode, where N follows the measured step time, the steps taken plus the stream batches left at the
    current N, so that the stream's last step is the schedule's last, whatever N became."""
    cfg = tiny_config("online/embedded/byol", *ONLINE, *SMALL, f"++online.time_budget_s={budget}", "++eval.every=0")
    run = bare_online_run(cfg)
    model, learner = run.model, run.learner
    learner.clock = lambda: 0.1 * learner.local_steps  # every local step takes 0.1 s
    calls, step_ns = [], []
    ema = model.after_optimizer_step
    model.after_optimizer_step = lambda step, total: (calls.append((step, total)), ema(step, total))
    for batch in run.batches():
        log, values = train_stream_batch(learner, model, run.optimizer, batch)
        step_ns.append(log.n_steps)
    assert [step for step, _ in calls] == list(range(learner.local_steps))
    assert calls[-1][1] == learner.local_steps  # the last step is the schedule's last
    totals = {total for _, total in calls}
    if budget == 0:
        assert set(step_ns) == {cfg.online.steps_per_batch} and totals == {len(step_ns) * cfg.online.steps_per_batch}
    else:
        assert step_ns[0] == cfg.online.steps_per_batch and set(step_ns[1:]) == {4}  # 0.45 s / 0.1 s per step
        assert len(totals) == 2  # planned with the configured N, then with the measured one


def test_simsiam_predictor_keeps_its_base_lr_through_every_schedule(tiny_config):
    """solo-learn's and CaSSLe's static_lr: the predictor's groups stay at optimizer.lr while the warm-up + cosine
    (offline) and every stream batch's one-cycle (SLCLRS) move the other groups; its weight decay is the others'."""
    from solo_ossl.methods.base import warmup_cosine
    from solo_ossl.modules import keep_static_lrs

    cfg = tiny_config("online/embedded/simsiam", *ONLINE, *SMALL, "++eval.every=0")
    run = bare_online_run(cfg)
    model, learner, optimizer = run.model, run.learner, run.optimizer
    groups = optimizer.param_groups
    static = [i for i, g in enumerate(groups) if g.get("static_lr")]
    predictor = {id(p) for p in model.predictor.parameters()}
    assert static and {id(p) for i in static for p in groups[i]["params"]} == predictor
    assert all(groups[i]["weight_decay"] in (cfg.optimizer.weight_decay, 0.0) for i in static)
    lr = cfg.optimizer.lr
    schedule = stream_batch_schedule(optimizer, 5, learner.cfg, cfg.optimizer.classifier_lr)
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in groups])
        optimizer.step()
        schedule.step()
    assert all(row[i] == lr for row in seen for i in static)
    moving = [i for i in range(len(groups)) if i not in static]
    assert all(len({row[i] for row in seen}) == 5 for i in moving)  # a one-cycle for every other group
    offline = keep_static_lrs(warmup_cosine(optimizer, 20, 5, 2, 0.1, 0.01, 0.0))
    for _ in range(20):
        assert all(groups[i]["lr"] == lr for i in static)
        optimizer.step()
        offline.step()
    assert groups[moving[0]]["lr"] < 0.01 * lr  # annealed, while the predictor kept its lr
    state = offline.state_dict()
    offline.load_state_dict(state)
    assert set(state) == {"inner"}
