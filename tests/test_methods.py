import pytest
import torch
import torchvision

from solo_ossl.args.schema import LinearConfig
from solo_ossl.backbones import resnet18
from solo_ossl.data.datasets import synthetic_arrays
from solo_ossl.methods import METHODS
from solo_ossl.run.linear import run_linear, topk_accuracy, train_linear_on_features
from solo_ossl.run.pretrain import run_pretrain


@pytest.mark.parametrize("config", ["pretrain/embedded/simclr", "pretrain/embedded/barlow", "pretrain/embedded/vicreg"])
def test_a_few_training_steps_lower_the_loss(tiny_config, config):
    torch.manual_seed(0)
    cfg = tiny_config(config, "++optimizer.name=sgd", "++optimizer.lr=0.05")
    model = METHODS[cfg.method.name](cfg, 10, (0.5,) * 3, (0.25,) * 3)
    images, _ = synthetic_arrays(4, 16, 32, seed=0)
    views = model.augment(torch.from_numpy(images).permute(0, 3, 1, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(25):
        loss = model.ssl_loss(model(views[0]), model(views[1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # 25 steps lower SimCLR's loss to 0.64-0.93 of its start over seeds 0-4 (0.77-0.89 with the kornia views).
    assert sum(losses[-3:]) / 3 < 0.95 * losses[0], losses


def test_unit_loss_shape_and_group_size(tiny_config):
    for config, group in (
        ("pretrain/embedded/simclr", 1),
        ("pretrain/embedded/barlow", 16),
        ("pretrain/embedded/vicreg", 16),
    ):
        cfg = tiny_config(config)
        model = METHODS[cfg.method.name](cfg, 10, (0.5,) * 3, (0.25,) * 3)
        assert model.group_size == group
        outs = {"z": torch.randn(32, 64)}, {"z": torch.randn(32, 64)}
        assert model.unit_losses(*outs).shape == (32 // group,)


def test_checkpoint_keys_and_reload_into_linear(tiny_config, tmp_path):
    cfg = tiny_config("pretrain/embedded/barlow", "++max_epochs=1", "++optimizer.batch_size=32")
    final = run_pretrain(cfg)
    state = torch.load(final, weights_only=False)
    keys = state["state_dict"].keys()
    assert any(k.startswith("backbone.") for k in keys) and any(k.startswith("projector.") for k in keys)
    assert state["solo_ossl"]["method"] == "barlow_twins"
    assert [p.name for p in (tmp_path / cfg.name / "checkpoints").iterdir()] == ["last.ckpt"]
    from solo_ossl.args import load_linear_config

    from .conftest import TINY

    linear_cfg = load_linear_config(
        [
            "--config-name",
            "linear/embedded",
            *TINY[:3],
            f"++pretrained_ckpt={final}",
            f"++output_dir={tmp_path}",
            "++max_epochs=5",
            "++precision=32",
        ]
    )
    results = run_linear(linear_cfg)
    assert (tmp_path / "linear-embedded" / "linear_results.json").is_file()
    assert 0 <= results["top1"] <= 100 and results["test_samples"] == 80


def test_linear_probe_on_separable_features_beats_chance():
    from omegaconf import OmegaConf

    g = torch.Generator().manual_seed(0)
    centers = torch.randn(10, 32, generator=g) * 3
    labels = torch.arange(10).repeat_interleave(60)
    feats = centers[labels] + torch.randn(600, 32, generator=g)
    cfg = OmegaConf.structured(LinearConfig(seed=0, batch_size=64, max_epochs=20))
    head = train_linear_on_features(feats[::2], labels[::2], 10, cfg)
    acc = topk_accuracy(head(feats[1::2]), labels[1::2], 10)
    assert acc["top1"] > 90  # chance is 10%


def test_backbone_shapes_and_torchvision_keys():
    cifar = resnet18(cifar=True, width=0.25)
    assert cifar(torch.randn(2, 3, 32, 32)).shape == (2, cifar.num_features) and cifar.num_features == 128
    imagenet = resnet18(cifar=False, width=1.0)
    reference = torchvision.models.resnet18().state_dict()
    imagenet.load_state_dict({k: v for k, v in reference.items() if not k.startswith("fc.")})
    assert imagenet(torch.randn(1, 3, 64, 64)).shape == (1, 512)


def test_vicreg_runs_online_with_rals_and_distills_with_predictive_mse(tiny_config, tmp_path):
    import csv

    cfg = tiny_config(
        "online/embedded/vicreg_rals",
        "++online.stream_batch_size=16",
        "++online.steps_per_batch=3",
        "++online.skip_first_task=false",
        "++method.group_size=4",
        "++online.k=24",
        "++eval.every=0",
        "++data.synthetic_per_class=16",
    )
    run_pretrain(cfg)
    with open(tmp_path / cfg.name / "online_steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 * 3 and all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    assert all(int(r["selected"]) == 24 for r in rows if int(r["stream_batch"]) >= 2)  # RALS kept k of 48
    model = METHODS["vicreg"](tiny_config("pretrain/embedded/vicreg"), 10, (0.5,) * 3, (0.25,) * 3)
    p, z = [torch.randn(8, 64) for _ in range(2)], [torch.randn(8, 64) for _ in range(2)]
    expected = sum(((a - b) ** 2).mean() for a, b in zip(p, z, strict=True)) / 2
    torch.testing.assert_close(model.distill_loss(p, z), expected)
    assert model.cfg.cassle.distill_lamb == 25.0
