import pytest
import torch

from solo_ossl.args import load_config, load_linear_config
from solo_ossl.run.validate import validate_linear, validate_pretrain
from solo_ossl.utils.errors import SoloOsslError

from .conftest import TINY, run_script


def test_overrides_and_yaml_defaults():
    cfg = load_config(
        ["--config-name", "online/cifar100/barlow_rals", "++online.steps_per_batch=20", "++data.tasks=[1,2]"]
    )
    assert cfg.online.steps_per_batch == 20 and list(cfg.data.tasks) == [1, 2]
    assert cfg.online.selection == "rals" and cfg.online.memory.batches == 2.0  # from the _rals file
    assert cfg.method.name == "barlow_twins" and cfg.online.max_lr == 0.05  # from its defaults chain
    assert cfg.data.augmentations[1].solarization_prob == 0.2


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_key_and_wrong_type():
    assert_one_line_error(run_script("main_pretrain.py", "++optimizer.lrr=0.1"), "optimizer.lrr", "lr")
    # A method's own keys: Barlow Twins has no temperature (SimCLR's), and its lamb is a number.
    barlow = ("--config-name", "pretrain/embedded/barlow")
    result = run_script("main_pretrain.py", *barlow, "++method.temperature=0.1")
    assert_one_line_error(result, "method barlow_twins has no key method.temperature", "lamb, scale_loss")
    assert_one_line_error(run_script("main_pretrain.py", *barlow, "++method.lamb=high"), "method barlow_twins", "lamb")
    assert_one_line_error(run_script("main_pretrain.py", "++online.steps_per_batch=many"), "online.steps_per_batch")


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_script("main_pretrain.py", "++data.dataset=imagefolder", f"++data.data_dir={missing}")
    assert_one_line_error(result, str(missing / "train"), "does not exist")
    result = run_script("main_pretrain.py", "++data.dataset=cifar100", f"++data.data_dir={missing}")
    assert_one_line_error(result, "cifar100 not found", "data.download=true")


def test_checkpoint_of_the_other_method(tmp_path):
    ckpt = tmp_path / "simclr.ckpt"
    torch.save({"state_dict": {}, "solo_ossl": {"method": "simclr"}}, ckpt)
    result = run_script(
        "main_pretrain.py",
        "--config-name",
        "online/embedded/barlow_rals",
        *TINY,
        f"++output_dir={tmp_path}",
        f"++pretrained_ckpt={ckpt}",
    )
    assert_one_line_error(result, "trained with method 'simclr'", "barlow_twins")


def test_corrupt_checkpoint(tmp_path):
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    result = run_script("main_linear.py", f"++pretrained_ckpt={ckpt}", *TINY[:3])
    assert_one_line_error(result, "cannot read checkpoint", str(ckpt))


@pytest.mark.parametrize(
    "config,overrides,message",
    [
        ("pretrain/embedded/barlow", ["++backbone.name=vit"], "unknown backbone.name 'vit' (choose resnet18)"),
        ("pretrain/embedded/barlow", ["++backbone.width=0"], "backbone.width must be positive"),
        ("pretrain/embedded/barlow", ["++method.name=dino"], "unknown method.name 'dino' (choose simclr,"),
        ("pretrain/embedded/barlow", ["++method.group_size=0"], "method.group_size must be >= 1"),
        ("pretrain/embedded/barlow", ["++optimizer.batch_size=0"], "optimizer.batch_size must be at least 1"),
        ("pretrain/embedded/barlow", ["++scheduler.max_warmup_share=1.5"], "scheduler.max_warmup_share must be in"),
        ("pretrain/embedded/barlow", ["++data.num_tasks=0"], "data.num_tasks must be at least 1"),
        ("pretrain/embedded/barlow", ["++data.loader=dali"], "needs data.dataset=imagefolder"),
        ("pretrain/embedded/barlow", ["++precision=fp8"], "unknown precision 'fp8'"),
        ("pretrain/embedded/barlow", ["++devices=0"], "devices and num_nodes must be at least 1"),
        ("pretrain/embedded/barlow", ["++eval.knn.k=0"], "eval.knn.k must be at least 1"),
        ("pretrain/embedded/barlow", ["++regime=cassle", "++cassle.distill_lamb=-1"], "cassle.distill_lamb must be at"),
        (
            "pretrain/embedded/barlow",
            ["++regime=streaming"],
            "unknown regime 'streaming' (choose offline, cassle, online)",
        ),
        ("online/embedded/barlow_rals", ["++online.memory.policy=lru"], "unknown online.memory.policy 'lru'"),
        ("online/embedded/barlow_rals", ["++online.schedule=step"], "unknown online.schedule 'step'"),
        ("online/embedded/barlow_rals", ["++online.checkpoint_every=0"], "online.checkpoint_every must be at least 1"),
    ],
)
def test_each_section_validator_names_its_key(config, overrides, message):
    cfg = load_config(["--config-name", config, *TINY, *overrides])
    with pytest.raises(SoloOsslError, match=message.replace("(", "\\(").replace(")", "\\)")):
        validate_pretrain(cfg)


def test_linear_config_is_validated():
    for overrides, message in (
        (["++knn.temperature=0"], "knn.temperature must be positive"),
        (["++max_epochs=0"], "max_epochs must be at least 1"),
    ):
        with pytest.raises(SoloOsslError, match=message):
            validate_linear(load_linear_config(["--config-name", "linear/embedded", *overrides]))


def test_closed_choices_are_typed_in_the_schema():
    for key, value, choices in (
        ("online.stream.order", "random", "class_incremental, iid, as_stored"),
        ("optimizer.name", "adam", "lars, sgd"),
        ("data.dataset", "mnist", "cifar10, cifar100, npz"),
        ("accelerator", "tpu", "auto, cpu, gpu, cuda"),
    ):
        with pytest.raises(SoloOsslError, match=f"key '{key}'.*expected one of \\[{choices}"):
            load_config([f"++{key}={value}"])
    assert_one_line_error(run_script("main_pretrain.py", "++online.memory.store=disk"), "online.memory.store", "images")


def test_each_method_declares_its_own_keys_with_their_defaults():
    """The method section of a config carries the common keys and whatever the YAML sets; the method fills in its
    own keys' defaults and refuses another method's."""
    from solo_ossl.methods import METHODS

    cfg = load_config(["--config-name", "pretrain/embedded/simclr", *TINY])
    validate_pretrain(cfg)
    assert cfg.method.temperature == 0.2 and "lamb" not in cfg.method
    cfg = load_config(["--config-name", "pretrain/embedded/simclr", *TINY, "++method.name=barlow_twins"])
    validate_pretrain(cfg)  # the same config runs another method whose keys it does not set
    assert (cfg.method.lamb, cfg.method.scale_loss) == (0.005, 0.1) and "temperature" not in cfg.method
    for name, method in METHODS.items():
        assert method.name == name and method.checked_config({"name": name}).name == name
    with pytest.raises(SoloOsslError, match="method simclr has no key method.lamb"):
        METHODS["simclr"].checked_config({"name": "simclr", "lamb": 0.1})
