"""The same command again continues an interrupted run (offline, online, CaSSLe task by task) to the uninterrupted
run's weights, bitwise on the CPU; a finished run is not trained again; SIGTERM saves a checkpoint at the end of the
stream batch in progress and stops with exit code 143, never 0."""

import csv
import os
import signal

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.run.continual import run_continual
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import PREEMPTED_EXIT_CODE, Preempted, SoloOsslError, exit_on_user_error

from .test_online import HALF, ONLINE


class Killed(Exception):
    """Stands for a process killed without warning (SIGKILL, a crash): nothing runs after it."""


class KillAt(Callback):
    def __init__(self, batches: int, how: str = "kill") -> None:
        self.batches, self.how, self.seen = batches, how, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.batches:
            if self.how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # as a cluster does before it preempts the job
            else:
                raise Killed


def weights(path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


ONLINE_RUN = ("online/embedded/barlow_rals", *ONLINE, HALF, "++online.checkpoint_every=2", "++method.group_size=4")


def test_an_online_run_killed_or_preempted_continues_to_the_same_weights(tiny_config, tmp_path, capsys):
    full = weights(run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=full")))
    # Killed after stream batch 5: the last checkpoint is from batch 4; the same command again resumes from it.
    with pytest.raises(Killed):
        run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=killed"), [KillAt(5)])
    capsys.readouterr()
    again = run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=killed"))
    assert "resuming the interrupted run from" in capsys.readouterr().out
    assert_same(full, weights(again))
    with (tmp_path / "killed" / "online_steps.csv").open() as f:  # batch 4's rows, trained twice, kept once
        assert [int(r["stream_batch"]) for r in csv.DictReader(f)] == [b for b in range(10) for _ in range(3)]
    # SIGTERM during stream batch 3: the checkpoint is saved at its end, and the run stops (not as finished).
    with pytest.raises(Preempted, match="after stream batch 3"):
        run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=preempted"), [KillAt(3, "sigterm")])
    final = tmp_path / "preempted" / "final.ckpt"
    assert not final.exists()
    assert_same(full, weights(run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=preempted"))))
    # Finished: not trained again (the file stays as it was); another config in the same folder is refused.
    stamp = final.stat().st_mtime_ns
    assert run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=24", "++name=preempted")) == final
    assert final.stat().st_mtime_ns == stamp and "finished before" in capsys.readouterr().out
    with pytest.raises(SoloOsslError, match="holds a run of another config \\(differs in online\\)"):
        run_pretrain(tiny_config(*ONLINE_RUN, "++online.k=32", "++name=preempted"))
    fresh = tiny_config(*ONLINE_RUN, "++online.k=24", "++name=preempted", "++auto_resume=false")
    fresh.online.max_stream_batches = 1
    assert torch.load(run_pretrain(fresh), weights_only=False)["online"]["position"] == 1  # started over


def test_offline_and_cassle_runs_killed_continue_to_the_same_weights(tiny_config, tmp_path):
    offline = ("pretrain/embedded/simclr", "++max_epochs=3", "++optimizer.batch_size=32", "++val_every_n_epochs=0")
    every_task = "++data.tasks=null"  # 320 images: 10 batches an epoch
    full = weights(run_pretrain(tiny_config(*offline, every_task, "++name=full")))
    with pytest.raises(Killed):  # during epoch 3: the last checkpoint is from the end of epoch 2
        run_pretrain(tiny_config(*offline, every_task, "++name=killed"), [KillAt(22)])
    assert_same(full, weights(run_pretrain(tiny_config(*offline, every_task, "++name=killed"))))

    task1 = run_pretrain(tiny_config("pretrain/embedded/simclr", "++data.tasks=[1]", "++max_epochs=1", "++name=t1"))
    cassle = (
        *offline,
        "++regime=cassle",
        "++cassle.proj_hidden_dim=32",
        "++data.last_task=3",
        f"++pretrained_ckpt={task1}",
    )
    uninterrupted = weights(run_continual(tiny_config(*cassle, "++name=cassle_full"))[-1])
    with pytest.raises(Killed):  # task 2 (3 epochs of 2 batches) finishes; task 3 is killed in its second epoch
        run_continual(tiny_config(*cassle, "++name=cassle_cut"), [KillAt(6 + 3)])
    assert (tmp_path / "cassle_cut" / "task2" / "final.ckpt").is_file()
    assert_same(uninterrupted, weights(run_continual(tiny_config(*cassle, "++name=cassle_cut"))[-1]))


def test_a_preempted_entry_point_exits_143_with_one_line(capsys):
    @exit_on_user_error
    def main():
        raise Preempted("SIGTERM received: the run saved last.ckpt after stream batch 3; run the same command again")

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == PREEMPTED_EXIT_CODE == 143
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped: SIGTERM received")


def test_a_run_saved_before_sync_batchnorm_became_null_still_compares_equal(tiny_config):
    """sync_batchnorm's default moved from false to null (on for several GPUs): an interrupted run saved with false
    continues wherever the two mean the same (one process, or CPU processes), and not where they differ."""
    from solo_ossl.run.pretrain import comparable

    def cfg(*overrides):
        return tiny_config("pretrain/embedded/barlow", *overrides)

    assert comparable(cfg("++sync_batchnorm=false")) == comparable(cfg())
    assert comparable(cfg("++sync_batchnorm=false", "++devices=2", "++accelerator=cpu")) == comparable(
        cfg("++devices=2", "++accelerator=cpu")
    )
    assert comparable(cfg("++sync_batchnorm=true")) == comparable(cfg())  # one process: no BatchNorm to sync


def test_a_run_saved_when_every_methods_keys_were_in_one_section_still_compares_equal(tiny_config):
    """Runs saved before each method declared its own keys hold every method's keys in their method section (SimCLR's
    temperature in a Barlow Twins run): they continue, compared on the method's own keys."""
    from omegaconf import OmegaConf

    from solo_ossl.run.pretrain import comparable
    from solo_ossl.run.validate import validate_pretrain

    now = tiny_config("pretrain/embedded/barlow")
    validate_pretrain(now)
    saved = OmegaConf.to_container(now)
    saved["method"].update(temperature=0.2, pred_hidden_dim=4096, sim_loss_weight=25.0)
    assert comparable(OmegaConf.merge(OmegaConf.structured(OmegaConf.get_type(now)), saved)) == comparable(now)
    saved["method"]["lamb"] = 0.01  # its own keys still count
    assert comparable(OmegaConf.merge(OmegaConf.structured(OmegaConf.get_type(now)), saved)) != comparable(now)
