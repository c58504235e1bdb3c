"""Fidelity to the paper and to CaSSLe's code (issue 10): one test per item, each failing on the earlier behaviour."""

import csv
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torchvision.transforms import v2

from solo_ossl.args import load_config, load_linear_config
from solo_ossl.args.schema import ViewAugmentConfig
from solo_ossl.backbones import BACKBONES
from solo_ossl.data.augment import MultiViewAugment
from solo_ossl.data.datasets import EMBEDDED_PATH
from solo_ossl.losses import simclr_distill_loss_func
from solo_ossl.memory import build_memory as ReplayMemory
from solo_ossl.methods import METHODS
from solo_ossl.methods.base import warmup_cosine
from solo_ossl.model import build_model
from solo_ossl.online import random_select
from solo_ossl.run.linear import linear_schedule
from solo_ossl.run.pretrain import run_pretrain

SIMCLR_JITTER = (0.8, 0.8, 0.8, 0.2)
BT_JITTER = (0.4, 0.4, 0.2, 0.1)


# ---- 1. colour jitter: torchvision's semantics ------------------------------------------------------------------
def _real_images(n: int = 1000) -> torch.Tensor:
    return torch.as_tensor(np.load(EMBEDDED_PATH)["x_train"][:n]).permute(0, 3, 1, 2).contiguous()


def _jitter_only(strengths) -> ViewAugmentConfig:
    b, c, s, h = strengths
    return ViewAugmentConfig(
        crop_min_scale=1.0,
        brightness=b,
        contrast=c,
        saturation=s,
        hue=h,
        color_jitter_prob=1.0,
        gray_scale_prob=0.0,
        horizontal_flip_prob=0.0,
    )


def _statistics(x: torch.Tensor) -> tuple[float, float]:
    """Mean intensity and share of pixels clipped to 0 or 1, in percent. Within 1e-3 of a bound (a quarter of an
    8-bit level) counts as clipped: torchvision's grayscale weights sum to 0.9999 and its HSV round trip rounds, so a
    clipped white comes back as 0.99995 there, which an exact comparison did not count (1.6 points of its 11.4% at
    SimCLR's strengths); ours keeps it 1.0."""
    return 100 * x.mean().item(), 100 * ((x <= 1e-3) | (x >= 1 - 1e-3)).float().mean().item()


def _torchvision_statistics(images: torch.Tensor, strengths) -> tuple[float, float]:
    jitter = v2.ColorJitter(*strengths)  # per image, random order per image
    return _statistics(torch.stack([jitter(im) for im in images.float() / 255]))


@pytest.mark.parametrize("strengths", [SIMCLR_JITTER, BT_JITTER])
def test_batched_colour_jitter_matches_torchvision_statistics_on_real_images(strengths):
    torch.manual_seed(0)
    images = _real_images()
    mean, std = (0.5,) * 3, (0.25,) * 3
    view = MultiViewAugment([_jitter_only(strengths)], 32, mean, std)
    # The jitter's order is drawn per call (torchvision draws it per image): each image's output has the same
    # distribution either way, so the statistics agree over calls; 40 calls of 25 images.
    ours = torch.cat([view(chunk)[0] for chunk in images.split(25)]) * 0.25 + 0.5  # back to [0, 1]
    our_mean, our_clipped = _statistics(ours)
    tv_mean, tv_clipped = _torchvision_statistics(images, strengths)
    # kornia's ColorJiggle gave 37% clipped at SimCLR's strengths against torchvision's 11%.
    assert abs(our_mean - tv_mean) < 2.0
    assert abs(our_clipped - tv_clipped) < 3.0


def test_dali_colour_twist_is_checked_against_torchvision_statistics():
    """DALI's color_twist (what CaSSLe's own ImageNet-100 DALI loader uses, cassle/utils/dali_dataloader.py)
    pivots contrast on mid-grey, not the image mean: measured here 18% clipped against torchvision's 13% at
    SimCLR's strengths. The bound documents that difference (docs/fidelity.md) and catches a larger drift.
    1,000 images: over 6 seeds each the mean intensities differ by 0.8 (SD 0.4 torchvision, 0.5 DALI), clipped
    18.0% against 13.1% (SD 0.3, 0.6), so the bounds sit over 4 SD away; 256 unseeded images (SD 0.9 / 1.0 on the
    means) failed the 3.0 bound in CI once."""
    pytest.importorskip("nvidia.dali")
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    from solo_ossl.data.dali import dali_view

    images = _real_images()  # torchvision's draws are seeded before every test (conftest's _seeded_global_rngs)
    cfg = _jitter_only(SIMCLR_JITTER)

    @pipeline_def(batch_size=len(images), num_threads=1, device_id=None, seed=0, enable_conditionals=True)
    def pipeline():
        raw = fn.external_source(name="raw", layout="HWC", dtype=types.UINT8)
        return dali_view(raw, cfg, 32, (0.0,) * 3, (1.0,) * 3)

    pipe = pipeline()
    pipe.build()
    pipe.feed_input("raw", [np.ascontiguousarray(im.permute(1, 2, 0).numpy()) for im in images])
    (out,) = pipe.run()
    dali = torch.as_tensor(np.stack([np.array(o) for o in out]))  # normalized with mean 0, std 1: in [0, 1]
    dali_mean, dali_clipped = _statistics(dali)
    tv_mean, tv_clipped = _torchvision_statistics(images, SIMCLR_JITTER)
    assert abs(dali_mean - tv_mean) < 3.0
    assert 0 <= dali_clipped - tv_clipped < 12.0


# ---- 2. warm-up: a bounded share, every run ends annealed --------------------------------------------------------
def _lrs(scheduler, optimizer, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_is_a_bounded_share_and_the_run_ends_annealed():
    for epochs, expected_warmup_epochs in ((10, 1), (20, 2), (500, 10)):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
        steps_per_epoch = 8
        total = epochs * steps_per_epoch
        scheduler = warmup_cosine(optimizer, total, steps_per_epoch, 10.0, 0.1, 0.01, 0.0)
        lrs = _lrs(scheduler, optimizer, total)
        assert int(np.argmax(lrs)) == expected_warmup_epochs * steps_per_epoch
        assert max(lrs) == pytest.approx(0.3)
        assert lrs[-1] < 0.01 * 0.3  # the last step is annealed
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # min_lr at the end


def test_a_ten_epoch_cassle_task_warms_up_briefly_and_ends_at_its_minimum(tiny_config):
    from lightning.pytorch.callbacks import Callback

    class Record(Callback):
        def __init__(self) -> None:
            self.lrs = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    common = ["++optimizer.batch_size=32", "++cassle.proj_hidden_dim=32", "++data.num_tasks=5"]
    task1 = run_pretrain(tiny_config("pretrain/embedded/barlow", *common, "++data.tasks=[1]", "++max_epochs=1"))
    record = Record()
    cfg = tiny_config(
        "pretrain/embedded/barlow",
        *common,
        "++data.tasks=[2]",
        "++max_epochs=10",
        "++scheduler.warmup_epochs=10",  # CaSSLe's 10 warm-up epochs, for a 10-epoch task
        "++regime=cassle",
        f"++pretrained_ckpt={task1}",
        "++name=cassle2",
    )
    run_pretrain(cfg, [record])
    lrs = record.lrs
    assert len(lrs) == 20  # 64 images, batches of 32, 10 epochs
    assert int(np.argmax(lrs)) <= 0.1 * len(lrs)  # warm-up: one epoch of ten
    assert lrs[-1] < 0.05 * max(lrs)  # annealed, not stopped at the peak


# ---- 3. CaSSLe's contrastive distiller for SimCLR ---------------------------------------------------------------
def naive_simclr_distill(p1, p2, z1, z2, temperature):
    p = torch.cat([p1, p2]).double()
    z = torch.cat([z1, z2]).double()
    total = 0.0
    for i in range(len(p)):
        pi = p[i] / p[i].norm()
        logits = [float(pi @ (z[j] / z[j].norm())) / temperature for j in range(len(z))]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(p)


def test_simclr_distill_loss_matches_a_naive_loop():
    torch.manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(6, 5) for _ in range(4))
    got = simclr_distill_loss_func(p1, p2, z1, z2, 0.2).item()
    assert got == pytest.approx(naive_simclr_distill(p1, p2, z1, z2, 0.2), rel=1e-5)


def test_simclr_distillation_is_symmetric_with_cassle_settings(tiny_config):
    cfg = tiny_config("pretrain/embedded/simclr", "++regime=cassle", "++cassle.proj_hidden_dim=32")
    assert cfg.cassle.temperature == 0.2 and cfg.cassle.distill_lamb == 1.0
    model = METHODS["simclr"](cfg, 10, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(1)
    p1, p2, z1, z2 = (torch.randn(8, 64) for _ in range(4))
    expected = (naive_simclr_distill(p1, p2, z1, z2, 0.2) + naive_simclr_distill(z1, z2, p1, p2, 0.2)) / 2
    assert model.distill_loss([p1, p2], [z1, z2]).item() == pytest.approx(expected, rel=1e-5)


# ---- 4. CaSSLe's predictor carries over from task to task -------------------------------------------------------
def test_cassle_predictor_carries_over_to_the_next_task(tiny_config):
    common = ["++optimizer.batch_size=32", "++cassle.proj_hidden_dim=32", "++max_epochs=1"]
    task1 = run_pretrain(tiny_config("pretrain/embedded/barlow", *common, "++data.tasks=[1]", "++name=t1"))
    cassle = [*common, "++regime=cassle"]
    task2 = run_pretrain(
        tiny_config("pretrain/embedded/barlow", *cassle, "++data.tasks=[2]", f"++pretrained_ckpt={task1}", "++name=t2")
    )
    saved = torch.load(task2, map_location="cpu", weights_only=False)["state_dict"]
    cfg = tiny_config("pretrain/embedded/barlow", *cassle, "++data.tasks=[3]")
    torch.manual_seed(123)
    model = build_model(cfg, 10, (0.5,) * 3, (0.25,) * 3)
    model.load_pretrained(str(task2))
    for key, value in model.distiller.predictor.state_dict().items():
        assert torch.equal(value, saved[f"distiller.predictor.{key}"]), key
    # ... and the frozen copy is the previous task's model.
    for key, value in model.distiller.frozen.backbone.state_dict().items():
        assert torch.equal(value, saved[f"backbone.{key}"]), key


# ---- 5. RALS at local step 0: uniform random, no scoring --------------------------------------------------------
def test_random_selection_gives_the_stream_its_share():
    torch.manual_seed(0)
    stream_units, units, k = 8, 24, 16  # paper: 128 stream + 256 memory in groups of 16, keep 256
    shares = [(random_select(units, k) < stream_units).float().mean().item() for _ in range(4000)]
    assert np.mean(shares) == pytest.approx(1 / 3, abs=0.01)
    assert len(set(random_select(units, k).tolist())) == k


@pytest.mark.long
def test_rals_selects_at_random_without_scoring_at_step_zero(tiny_config, tmp_path):
    # 16 stream + 32 memory candidates in groups of 4: 12 units, 6 kept; stream share 1/3 at random.
    cfg = tiny_config(
        "online/embedded/barlow_rals",
        "++online.stream_batch_size=16",
        "++online.steps_per_batch=3",
        "++online.skip_first_task=false",
        "++method.group_size=4",
        "++online.k=24",
    )
    final = run_pretrain(cfg)
    with open(tmp_path / cfg.name / "online_steps.csv") as f:
        rows = list(csv.DictReader(f))
    step0 = [r for r in rows if r["step"] == "0" and int(r["stream_batch"]) >= 2]
    assert all(r["stream_unit_loss"] == "" for r in step0)  # no scoring pass at step 0
    assert np.mean([float(r["stream_selected_ratio"]) for r in step0]) == pytest.approx(1 / 3, abs=0.1)
    scored = [r for r in rows if r["stream_unit_loss"] != ""]
    assert scored and all(r["step"] != "0" for r in scored)
    # The image counters hold exactly the scoring passes that ran: 2 models x 2 views x candidates.
    online = torch.load(final, map_location="cpu", weights_only=False)["online"]
    candidates = {int(r["stream_batch"]): 16 + min(32, 16 * int(r["stream_batch"])) for r in rows}
    scoring = sum(4 * candidates[int(r["stream_batch"])] for r in scored)
    assert online["images_forward"] - online["images_backward"] == scoring


# ---- 6. recipes as CaSSLe's scripts -----------------------------------------------------------------------------
RECIPES = {
    # config: (lr, weight decay, jitter per view, blur per view, solarization per view, projector, epochs)
    "pretrain/cifar100/barlow": (0.3, 1e-4, BT_JITTER, (0.0, 0.0), (0.0, 0.2), (2048, 2048), 500),
    "pretrain/cifar100/simclr": (0.4, 1e-5, SIMCLR_JITTER, (0.0, 0.0), (0.0, 0.0), (2048, 256), 500),
    "pretrain/imagenet100/barlow": (0.4, 1e-4, BT_JITTER, (1.0, 0.1), (0.0, 0.2), (2048, 2048), 400),
    "pretrain/imagenet100/simclr": (0.4, 1e-4, SIMCLR_JITTER, (0.5, 0.5), (0.0, 0.0), (2048, 128), 400),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_configs_follow_cassles_scripts(name):
    lr, wd, jitter, blur, solarization, projector, epochs = RECIPES[name]
    cfg = load_config(["--config-name", name])
    METHODS[cfg.method.name].complete_config(cfg)  # the method's own keys with their defaults
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.weight_decay, opt.batch_size) == ("lars", lr, wd, 256)
    assert (opt.eta, opt.clip_lr, opt.exclude_bias_n_norm) == (0.02, True, True)
    views = cfg.data.augmentations
    assert all((v.brightness, v.contrast, v.saturation, v.hue) == jitter for v in views)
    assert tuple(v.gaussian_prob for v in views) == blur
    assert tuple(v.solarization_prob for v in views) == solarization
    assert (cfg.method.proj_hidden_dim, cfg.method.proj_output_dim) == projector
    assert cfg.max_epochs == epochs
    if cfg.method.name == "simclr":
        assert cfg.method.temperature == 0.2
    else:
        assert (cfg.method.scale_loss, cfg.method.lamb) == (0.1, 0.005)


def test_cifar_stem_is_a_padded_3x3_conv_without_max_pool():
    model = BACKBONES["resnet18"](cifar=True)
    conv = model.conv1
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (2, 2))
    assert isinstance(model.maxpool, torch.nn.Identity)
    maps = model.maxpool(model.relu(model.bn1(conv(torch.zeros(1, 3, 32, 32)))))
    assert maps.shape[-2:] == (34, 34)


# ---- 7. linear protocol -----------------------------------------------------------------------------------------
def test_linear_protocol_defaults_are_cassles_step_decay():
    cfg = load_linear_config(["--config-name", "linear/cifar100"])
    assert (cfg.mode, cfg.max_epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == ("augmented", 100, 256, 0.1, 0.0)
    assert (cfg.scheduler, list(cfg.lr_decay_steps)) == ("step", [60, 80])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    lrs = _lrs(linear_schedule(optimizer, cfg, steps_per_epoch=3), optimizer, 100 * 3)
    by_epoch = lrs[::3]
    assert by_epoch[59] == pytest.approx(0.1) and by_epoch[60] == pytest.approx(0.01)
    assert by_epoch[79] == pytest.approx(0.01) and by_epoch[80] == pytest.approx(0.001)
    cosine = OmegaConf.merge(cfg, {"scheduler": "cosine"})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    assert _lrs(linear_schedule(optimizer, cosine, 3), optimizer, 300)[-1] < 1e-4


# ---- 8. memory policies: both kept, very different task mixtures ------------------------------------------------
def test_memory_policies_leave_the_task_mixtures_their_theory_predicts():
    capacity, per_task, tasks = 1000, 1000, 4  # the paper's ratio: memory 10k, 10k images per task (tasks 2-5)
    mixtures = {}
    for policy in ("reservoir", "random"):
        memory = ReplayMemory(capacity, policy, seed=0)
        for task in range(tasks):
            for _ in range(per_task // 100):
                memory.add(torch.zeros(100, dtype=torch.long), torch.full((100,), task))
        mixtures[policy] = torch.bincount(memory.labels, minlength=tasks).float() / capacity
    # reservoir: a uniform sample of the whole stream, 1/4 per task.
    assert torch.allclose(mixtures["reservoir"], torch.full((tasks,), 0.25), atol=0.04)
    # random replacement: a slot survives one insertion with probability 1 - 1/C, so the newest task dominates.
    survive = (1 - 1 / capacity) ** per_task
    expected = torch.tensor([survive**3, survive**2 * (1 - survive), survive * (1 - survive), 1 - survive])
    assert torch.allclose(mixtures["random"], expected, atol=0.04)
