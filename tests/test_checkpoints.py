"""Checkpoints that travel: the layouts of CaSSLe, solo-learn (before and after 1.0.3) and torchvision load wherever
a checkpoint is read, taking the online backbone (never a frozen or momentum copy); the safetensors export, which
every entry point reads without pickle."""

import pytest
import torch

from solo_ossl.args import load_linear_config
from solo_ossl.backbones import resnet18
from solo_ossl.export import export
from solo_ossl.methods import METHODS
from solo_ossl.modules import simclr_projector
from solo_ossl.run.linear import run_knn
from solo_ossl.utils.checkpoint import backbone_state, read_checkpoint, weights_fingerprint
from solo_ossl.utils.errors import SoloOsslError

from .conftest import TINY, run_script


def filled(seed: int, width: float = 0.125) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = resnet18(cifar=True, width=width)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    return net.state_dict()


def prefixed(state: dict, prefix: str) -> dict:
    return {f"{prefix}{k}": v for k, v in state.items()}


def layouts() -> dict[str, tuple[dict, dict]]:
    """Each peer layout as a checkpoint, and the online backbone it holds."""
    online, frozen, momentum = filled(0), filled(1), filled(2)
    projector = {k: torch.randn_like(v) for k, v in simclr_projector(64, 64, 64).state_dict().items()}
    cassle = {
        **prefixed(online, "encoder."),
        **prefixed(frozen, "frozen_encoder."),
        **prefixed(momentum, "momentum_encoder."),
        **prefixed(projector, "projector."),
        **prefixed(projector, "frozen_projector."),
        **prefixed(projector, "distill_predictor."),
    }
    solo_new = {**prefixed(online, "backbone."), **prefixed(momentum, "momentum_backbone.")}
    torchvision_like = {**online, "fc.weight": torch.randn(10, 64), "fc.bias": torch.randn(10)}
    return {
        "cassle / solo-learn <= 1.0.2": ({"state_dict": cassle, "hyper_parameters": {"encoder": "resnet18"}}, online),
        "solo-learn >= 1.0.3": ({"state_dict": solo_new, "epoch": 3}, online),
        "torchvision state dict": (torchvision_like, online),
        "DDP module prefix": ({"state_dict": prefixed(online, "module.encoder.")}, online),
    }


@pytest.mark.parametrize("layout", list(layouts()))
def test_every_peer_layout_gives_its_online_backbone(layout):
    checkpoint, online = layouts()[layout]
    state = backbone_state(checkpoint, layout)
    assert state.keys() == online.keys() and all(torch.equal(state[k], online[k]) for k in online)


def test_a_peer_checkpoint_starts_a_run_and_is_evaluated(tiny_config, tmp_path):
    checkpoint, online = layouts()["cassle / solo-learn <= 1.0.2"]
    path = tmp_path / "cassle.ckpt"
    torch.save(checkpoint, path)
    cfg = tiny_config("pretrain/embedded/simclr", "++method.proj_hidden_dim=64", "++method.proj_output_dim=64")
    model = METHODS["simclr"](cfg, 10, (0.5,) * 3, (0.25,) * 3)
    model.load_pretrained(str(path))  # as ++pretrained_ckpt: the task-1 start of any strategy
    assert all(torch.equal(v, online[k]) for k, v in model.backbone.state_dict().items())
    assert torch.equal(model.projector[0].weight, checkpoint["state_dict"]["projector.0.weight"])  # it fits
    data = ["++data.dataset=synthetic", "++data.synthetic_num_classes=10", "++data.synthetic_per_class=8"]
    knn = load_linear_config(
        ["--config-name", "linear/embedded", *data, "++backbone.width=0.125", f"++pretrained_ckpt={path}"]
    )
    assert 0 <= run_knn(knn)["knn_top1"] <= 100
    bad = tmp_path / "none.ckpt"
    torch.save({"state_dict": {"head.weight": torch.ones(1)}}, bad)
    with pytest.raises(SoloOsslError, match="holds no backbone"):
        backbone_state(read_checkpoint(bad), bad)


def test_export_writes_the_backbone_in_safetensors_that_every_entry_point_reads(tiny_config, tmp_path):
    from safetensors import safe_open

    from solo_ossl.run.pretrain import run_pretrain

    final = run_pretrain(tiny_config("pretrain/embedded/barlow", "++max_epochs=1", "++optimizer.batch_size=32"))
    out = tmp_path / "zoo" / "barlow.safetensors"
    result = run_script("solo_ossl/export.py", str(final), str(out))  # python -m solo_ossl.export CKPT OUT
    assert result.returncode == 0, result.stderr
    with safe_open(str(out), framework="pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
    assert "conv1.weight" in keys and not any(k.startswith(("backbone.", "projector.", "fc.")) for k in keys)
    assert (metadata["method"], metadata["width"], metadata["stem"]) == ("barlow_twins", "0.125", "cifar")
    assert (
        metadata["fingerprint"]
        == weights_fingerprint(final, ("backbone.",))
        == weights_fingerprint(out, ("backbone.",))
    )
    assert '"width": 0.125' in metadata["config"]
    knn = run_script(
        "main_knn.py", "--config-name", "linear/embedded", *TINY[:3], f"++pretrained_ckpt={out}", "++knn.k=5"
    )
    assert knn.returncode == 0 and "kNN (" in knn.stdout  # the shape comes from the file's metadata
    peer = tmp_path / "peer.ckpt"
    torch.save(layouts()["solo-learn >= 1.0.3"][0], peer)
    assert export(str(peer), str(tmp_path / "peer.safetensors"))["stem"] == "cifar"
    bad = run_script("solo_ossl/export.py", str(final))
    assert bad.returncode == 2 and bad.stderr.startswith("usage: python -m solo_ossl.export")
    assert "error: the following arguments are required: out" in bad.stderr


def test_export_writes_a_hub_style_folder_that_entry_points_read(tiny_config, tmp_path):
    import json

    from solo_ossl.run.pretrain import run_pretrain

    final = run_pretrain(tiny_config("pretrain/embedded/simclr", "++max_epochs=1", "++optimizer.batch_size=32"))
    out = tmp_path / "simclr-tiny"
    assert run_script("solo_ossl/export.py", str(final), str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert (config["architecture"], config["width"], config["stem"], config["method"]) == (
        "resnet18",
        0.125,
        "cifar",
        "simclr",
    )
    assert config["conv1"] == {"out_channels": 8, "kernel_size": 3, "stride": 1, "padding": 2}
    assert config["maxpool"] is False
    assert config["input"]["mean"] == [0.5071, 0.4865, 0.4409] and config["input"]["std"] == [0.2673, 0.2564, 0.2762]
    assert config["num_features"] == 64 and config["source_checkpoint"] == str(final)
    assert (
        config["fingerprint"] == weights_fingerprint(final, ("backbone.",)) == weights_fingerprint(out, ("backbone.",))
    )
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: solo_ossl\n") and config["fingerprint"] in card
    knn = run_script(
        "main_knn.py", "--config-name", "linear/embedded", *TINY[:3], f"++pretrained_ckpt={out}", "++knn.k=5"
    )
    assert knn.returncode == 0 and "kNN (" in knn.stdout


def torchvision_recipe() -> str:
    """The README's recipe for loading an exported width-1 backbone into torchvision's resnet18 (run as written)."""
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    return readme.split("<!-- torchvision recipe -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def recipe_features(folder, images: torch.Tensor) -> torch.Tensor:
    namespace: dict = {}
    exec(
        torchvision_recipe().replace('folder = "zoo/barlow-embedded-task1-w1"', f"folder = {str(folder)!r}"), namespace
    )
    net = namespace["net"].eval()
    with torch.no_grad():
        return net(images)


def test_an_exported_width_1_backbone_loads_into_torchvision_by_the_readme_recipe(tmp_path):
    """Both stems: torchvision's resnet18 with the README's changes computes this library's features."""
    for cifar in (True, False):
        torch.manual_seed(3)
        ours = resnet18(cifar=cifar, width=1.0)
        for module in ours.modules():  # non-trivial BatchNorm affine weights and running statistics
            if isinstance(module, torch.nn.BatchNorm2d):
                torch.nn.init.uniform_(module.weight, 0.5, 1.5)
                torch.nn.init.normal_(module.bias, std=0.1)
        ours.train()(torch.randn(8, 3, 32, 32))
        ours.eval()
        checkpoint = tmp_path / f"cifar{cifar}.ckpt"
        config = {"backbone": {"width": 1.0, "cifar": cifar}, "data": {"dataset": "cifar100"}}
        torch.save(
            {"state_dict": prefixed(ours.state_dict(), "backbone."), "solo_ossl": {"config": config}}, checkpoint
        )
        export(str(checkpoint), str(tmp_path / f"out{cifar}"))
        images = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            expected = ours(images)
        assert torch.allclose(recipe_features(tmp_path / f"out{cifar}", images), expected, rtol=1e-4, atol=1e-4)
