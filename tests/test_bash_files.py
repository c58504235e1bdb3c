"""The bash files build the commands the README promises (run with a stand-in ``python`` that prints them)."""

import os
import stat
import subprocess
import sys

from .conftest import ROOT

STUB = f"""#!/bin/sh
# -c snippets (the loader choice) run for real; main_*.py invocations are printed instead of run.
if [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi
echo "$@"
"""


def run_bash_file(tmp_path, script: str, *args: str, **env_vars: str) -> str:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", PYTHONPATH=str(ROOT), **env_vars)
    out = subprocess.run(["bash", str(ROOT / script), *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_imagenet_scripts_choose_the_loader_and_cifar_scripts_do_not(tmp_path):
    import torch

    from solo_ossl.data.dali import dali_available

    expected = "++data.loader=" + ("dali" if torch.cuda.is_available() and dali_available() else "torch")
    online = run_bash_file(tmp_path, "bash_files/ocssl/imagenet100/barlow_rals.sh", "50", "t1.ckpt", "++seed=1")
    assert online.split() == [
        "main_pretrain.py",
        "--config-name",
        "online/imagenet100/barlow_rals",
        expected,
        "++devices=1",
        "++online.steps_per_batch=50",
        "++pretrained_ckpt=t1.ckpt",
        "++name=barlow_rals-imagenet100-online-50steps",
        "++seed=1",
    ]
    assert expected in run_bash_file(tmp_path, "bash_files/pretrain/imagenet100/simclr.sh").split()
    assert expected in run_bash_file(tmp_path, "bash_files/linear/imagenet100/linear.sh", "x.ckpt").split()
    cifar = run_bash_file(tmp_path, "bash_files/ocssl/cifar100/simclr.sh")
    assert "loader" not in cifar and "trained_models/simclr-cifar100-task1/final.ckpt" in cifar


def test_imagenet_scripts_take_a_gpu_count(tmp_path):
    pretrain = run_bash_file(tmp_path, "bash_files/pretrain/imagenet100/barlow.sh", GPUS="2").split()
    assert {"++devices=2", "++strategy=ddp", "++sync_batchnorm=true", "++optimizer.batch_size=128"} <= set(pretrain)
    online = run_bash_file(tmp_path, "bash_files/ocssl/imagenet100/simclr_rals.sh", GPUS="4").split()
    assert {"++devices=4", "++strategy=ddp", "++sync_batchnorm=true"} <= set(online)
    assert "++devices=1" in run_bash_file(tmp_path, "bash_files/linear/imagenet100/linear.sh", "x.ckpt").split()
    assert "devices" not in run_bash_file(tmp_path, "bash_files/ocssl/cifar100/barlow.sh")


def test_continual_scripts_run_cassle_from_a_task1_checkpoint(tmp_path):
    cifar = run_bash_file(tmp_path, "bash_files/continual/cifar100/vicreg.sh", "t1.ckpt", "++max_epochs=3").split()
    assert cifar[:3] == ["main_continual.py", "--config-name", "pretrain/cifar100/vicreg"]
    assert {"++pretrained_ckpt=t1.ckpt", "++name=vicreg-cifar100-cassle", "++max_epochs=3"} <= set(cifar)
    imagenet = run_bash_file(tmp_path, "bash_files/continual/imagenet100/barlow.sh", GPUS="2").split()
    assert {
        "++devices=2",
        "++strategy=ddp",
        "++pretrained_ckpt=trained_models/barlow-imagenet100-task1/final.ckpt",
    } <= set(imagenet)


def test_the_50_step_warm_up_rule_lives_in_the_online_configs():
    from solo_ossl.args import load_config
    from solo_ossl.online.slclrs import pct_start_for

    for name in ("online/cifar100/barlow_rals", "online/imagenet100/simclr", "online/embedded/vicreg"):
        online = load_config(["--config-name", name]).online
        assert [pct_start_for(online, n) for n in (10, 20, 50, 100)] == [0.5, 0.5, 0.25, 0.5]
