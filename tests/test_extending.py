"""The core's seams, used from this file only: a method with a predictor and a momentum target, and a regime (plain
experience replay at a constant lr), each registered here and run without any change to the package."""

import copy
import math

import torch
import torch.nn.functional as F

from solo_ossl.methods import METHODS, BaseMethod
from solo_ossl.modules import cosine_tau, mlp_projector, predictor_mlp
from solo_ossl.online.algorithm import join_candidates, train_stream_batch
from solo_ossl.online.step import optimize_step
from solo_ossl.regimes import REGIMES, OnlineRegime
from solo_ossl.run.bare import bare_online_run
from solo_ossl.run.continual import run_continual
from solo_ossl.run.pretrain import run_pretrain

from .test_online import ONLINE, csv_rows


class ToyMomentumMethod(BaseMethod):
    """BYOL-like: a predictor on the online projection, regressed onto a momentum target's projection of the other
    view."""

    name = "toy_momentum"
    scored_modules = ("backbone", "projector", "predictor", "momentum_backbone", "momentum_projector")

    def __init__(self, cfg, num_classes, mean, std) -> None:
        super().__init__(cfg, num_classes, mean, std)
        self.predictor = predictor_mlp(cfg.method.proj_output_dim, 32)
        self.momentum_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def build_projector(self, features_dim, method_cfg):
        return mlp_projector(features_dim, method_cfg.proj_hidden_dim, method_cfg.proj_output_dim)

    @property
    def learnable_params(self):
        return [*super().learnable_params, {"name": "predictor", "params": self.predictor}]

    @property
    def momentum_pairs(self):
        return [(self.backbone, self.momentum_backbone), (self.projector, self.momentum_projector)]

    def forward(self, x, momentum: bool = True):
        out = super().forward(x)
        out["p"] = self.predictor(out["z"])
        if momentum:
            with torch.no_grad():
                out["momentum_z"] = self.momentum_projector(self.momentum_backbone(self._prepare(x)))
        return out

    def unit_losses(self, out1, out2):
        def distance(p, z):
            return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)

        per_sample = distance(out1["p"], out2["momentum_z"]) + distance(out2["p"], out1["momentum_z"])
        return per_sample.view(-1, self.group_size).mean(1)

    def ssl_loss(self, out1, out2):
        return self.unit_losses(out1, out2).mean() / 2

    def distill_loss(self, predictions, frozen):
        return (
            sum((2 - 2 * F.cosine_similarity(p, z, dim=-1)).mean() for p, z in zip(predictions, frozen, strict=True))
            / 2
        )


class ExperienceReplay(OnlineRegime):
    """Plain experience replay: every local step on the stream batch ⊕ a memory draw, at a constant lr (the online
    max lr), no selection, no schedule."""

    name = "replay"

    def training_step(self, method, batch, batch_idx):
        learner, optimizer = self.learner, method.optimizers()
        indexes, x, y = batch
        for group in optimizer.optimizer.param_groups:
            group["lr"] = learner.cfg.max_lr
        for _ in range(learner.cfg.steps_per_batch):
            draw = learner.draw_memory(x.device, x.device)
            v1, v2 = method.augment(join_candidates(x, draw.x))
            loss, _, _ = optimize_step(method, optimizer, v1, v2, join_candidates(y, draw.y), method.manual_backward)
        learner.take_stream_batch(batch)
        return loss


def toy(tiny_config, monkeypatch, config: str, *overrides: str):
    monkeypatch.setitem(METHODS, "toy_momentum", ToyMomentumMethod)
    return tiny_config(config, "++method.name=toy_momentum", "++momentum.base_tau=0.9", *overrides)


def momentum_state(model) -> dict:
    return {
        f"{n}.{k}": v.clone()
        for n in ("momentum_backbone", "momentum_projector")
        for k, v in model.get_submodule(n).state_dict().items()
    }


def test_a_momentum_method_trains_offline_and_its_target_follows_the_ema(tiny_config, monkeypatch, tmp_path):
    cfg = toy(tiny_config, monkeypatch, "pretrain/embedded/simclr", "++max_epochs=2", "++optimizer.batch_size=32")
    final = torch.load(run_pretrain(cfg), weights_only=False)["state_dict"]
    online, target = final["projector.0.weight"], final["momentum_projector.0.weight"]
    assert not torch.equal(online, target)  # the target trails the online weights
    assert "predictor.0.weight" in final


def test_the_ema_is_solo_learns_formula(tiny_config, monkeypatch):
    model = ToyMomentumMethod(toy(tiny_config, monkeypatch, "pretrain/embedded/simclr"), 10, (0.5,) * 3, (0.25,) * 3)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before, online = momentum_state(model), {f"momentum_{k}": v.clone() for k, v in model.state_dict().items()}
    model.after_optimizer_step(3, 10)
    tau = 0.9 + (1 - 0.9) * (1 - (1 + math.cos(math.pi * 3 / 10)) / 2)
    assert abs(tau - cosine_tau(3, 10, 0.9, 1.0)) < 1e-12
    for name, target in model.momentum_backbone.named_parameters():
        expected = tau * before[f"momentum_backbone.{name}"] + (1 - tau) * online[f"momentum_backbone.{name}"]
        torch.testing.assert_close(target, expected, rtol=0, atol=1e-6)
    for name, buffer in model.momentum_backbone.named_buffers():  # buffers are not averaged
        assert torch.equal(buffer, before[f"momentum_backbone.{name}"])


def test_a_momentum_method_runs_online_with_rals_scoring_its_whole_model(tiny_config, monkeypatch):
    cfg = toy(tiny_config, monkeypatch, "online/embedded/simclr_rals", *ONLINE, "++online.k=24", "++eval.every=0")
    run = bare_online_run(cfg)
    model, learner = run.model, run.learner
    taus = []
    for _, batch in zip(range(4), run.batches(), strict=False):
        before = momentum_state(model)
        log, values = train_stream_batch(learner, model, run.optimizer, batch)
        taus.append(cosine_tau(learner.local_steps - 1, learner.total_local_steps, 0.9, 1.0))
        assert not torch.equal(before["momentum_projector.0.weight"], model.momentum_projector[0].weight)
    anchor = learner.selection.anchor  # the whole scored model, momentum target included
    assert set(anchor.keys()) == set(ToyMomentumMethod.scored_modules)
    assert learner.local_steps == 4 * 3 and taus[0] < taus[-1] < 1.0
    assert all(p.grad is None for p in model.momentum_backbone.parameters())


def test_a_momentum_method_runs_online_and_under_cassle_through_the_drivers(tiny_config, monkeypatch, tmp_path):
    online = toy(tiny_config, monkeypatch, "online/embedded/simclr_rals", *ONLINE, "++online.k=24", "++eval.every=0")
    online.online.max_stream_batches = 4
    run_pretrain(online)
    rows = list(csv_rows(tmp_path / online.name / "online_steps.csv"))
    assert len(rows) == 4 * 3 and all(float(r["loss"]) > 0 for r in rows)
    task1 = toy(tiny_config, monkeypatch, "pretrain/embedded/simclr", "++data.tasks=[1]", "++max_epochs=1")
    task1.name = "task1"
    start = run_pretrain(task1)
    cassle = toy(
        tiny_config,
        monkeypatch,
        "pretrain/embedded/simclr",
        "++regime=cassle",
        "++cassle.proj_hidden_dim=32",
        "++max_epochs=1",
        "++data.last_task=3",
        f"++pretrained_ckpt={start}",
        "++name=cassle",
    )
    finals = run_continual(cassle)
    state = torch.load(finals[-1], weights_only=False)["state_dict"]
    assert len(finals) == 2 and any(k.startswith("distiller.frozen.backbone.") for k in state)
    assert "momentum_backbone.conv1.weight" in state


def test_a_regime_defined_here_registers_and_runs(tiny_config, monkeypatch, tmp_path):
    monkeypatch.setitem(REGIMES, "replay", ExperienceReplay)
    cfg = tiny_config("online/embedded/simclr", *ONLINE, "++regime=replay", "++eval.every=0", "++online.max_lr=0.01")
    cfg.online.max_stream_batches = 5
    final = torch.load(run_pretrain(cfg), weights_only=False)
    assert final["online"]["position"] == 5 and final["online"]["memory"]["size"] == 5 * 16
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == 0.01
