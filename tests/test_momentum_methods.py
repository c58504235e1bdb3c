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
        learner.end_stream_batch(log, values)
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
        checked.append(record["choice"].kept is not None)

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
