import torch

from solo_ossl.args import load_config

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
