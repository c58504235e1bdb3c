"""Offline and CaSSLe runs resumed with ++resume from an interrupted run's last.ckpt train as the uninterrupted run
(bitwise on the CPU): model, optimizer, scheduler, loops, CaSSLe's frozen copy and predictor, the augmentations'
random states and the loader's shuffle."""

import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.run.pretrain import run_pretrain


class StopAfterFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def weights(path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


def interrupted_and_resumed(tiny_config, tmp_path, config: str, *overrides: str) -> tuple[dict, dict]:
    common = [*overrides, "++max_epochs=2", "++optimizer.batch_size=32", "++val_every_n_epochs=0"]
    full = weights(run_pretrain(tiny_config(config, *common, "++name=full")))
    run_pretrain(tiny_config(config, *common, "++name=cut"), [StopAfterFirstEpoch()])
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    steps_per_epoch = torch.load(last, weights_only=False)["global_step"]
    assert (
        steps_per_epoch > 0
        and torch.load(tmp_path / "full" / "final.ckpt", weights_only=False)["global_step"] == 2 * steps_per_epoch
    )
    resumed = weights(run_pretrain(tiny_config(config, *common, "++name=cut", f"++resume={last}")))
    assert full.keys() == resumed.keys()
    return full, resumed


def test_offline_resume_equals_uninterrupted(tiny_config, tmp_path):
    full, resumed = interrupted_and_resumed(tiny_config, tmp_path, "pretrain/embedded/barlow")
    for key, value in full.items():
        assert torch.equal(value, resumed[key]), key


def test_cassle_resume_within_a_task_equals_uninterrupted(tiny_config, tmp_path):
    task1 = run_pretrain(tiny_config("pretrain/embedded/simclr", "++data.tasks=[1]", "++max_epochs=1", "++name=t1"))
    cassle = ["++regime=cassle", "++cassle.proj_hidden_dim=32", "++data.tasks=[2]", f"++pretrained_ckpt={task1}"]
    full, resumed = interrupted_and_resumed(tiny_config, tmp_path, "pretrain/embedded/simclr", *cassle)
    assert any(k.startswith("distiller.frozen.") for k in full) and any(
        k.startswith("distiller.predictor.") for k in full
    )
    for key, value in full.items():
        assert torch.equal(value, resumed[key]), key
