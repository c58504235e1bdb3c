import json
import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.online.selection import RalsSelection
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import SoloOsslError

ONLINE = ["++online.stream_batch_size=16", "++online.steps_per_batch=3", "++online.skip_first_task=false"]
HALF = "++data.synthetic_per_class=16"  # 160 training images: 10 stream batches of 16


class Recorder(Callback):
    """Records what each stream batch held and the optimizer steps taken per batch."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.indexes, self.steps, self.stop_after = [], [], stop_after
        self._start = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.indexes.append(batch[0].clone())
        self._start = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(trainer.global_step - self._start)
        if self.stop_after is not None and pl_module.regime.learner.position >= self.stop_after:
            trainer.should_stop = True


def test_online_run_takes_n_steps_per_batch_and_sees_each_sample_once(tiny_config):
    cfg = tiny_config("online/embedded/simclr", *ONLINE, HALF)
    recorder = Recorder()
    run_pretrain(cfg, [recorder])
    seen = torch.cat(recorder.indexes)
    assert len(seen) == 160 and len(set(seen.tolist())) == 160  # 10 classes x 16 training images, once each
    assert recorder.steps == [3] * 10


class RecordingRals(RalsSelection):
    """RALS that records, at each local step, the weight sums of the anchor and the model and the memory's content."""

    def __init__(self) -> None:
        super().__init__()
        self.records, self.memory_seen = [], {}

    def select(self, method, step, v1, v2, k_units):
        learner = method.regime.learner
        memory = learner.memory
        stored = memory.data[: len(memory)] if memory.data is not None else torch.empty(0)
        self.memory_seen.setdefault(learner.position, set()).update(stored.tolist())
        if step > 0:  # scoring steps (step 0 selects at random)
            anchor_sum = sum(p.double().sum().item() for p in self.anchor.backbone.parameters())
            model_sum = sum(p.double().sum().item() for p in method.backbone.parameters())
            self.records.append((learner.position, anchor_sum, model_sum))
        return super().select(method, step, v1, v2, k_units)


@pytest.mark.slow  # the same behaviours, through the Lightning-free step: tests/test_online_algorithm.py
def test_rals_trains_on_k_and_anchor_is_fixed_within_a_stream_batch(tiny_config, tmp_path):
    cfg = tiny_config(
        "online/embedded/barlow_rals",
        *ONLINE,
        HALF,
        "++method.group_size=4",
        "++online.k=24",
        "++online.memory.store=indices",
    )
    rule = RecordingRals()
    start_sums = {}

    class BatchStart(Callback):
        def on_train_start(self, trainer, pl_module):
            pl_module.regime.learner.selection = rule  # a rule is injected, as any object with the rule's methods

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            learner = pl_module.regime.learner
            start_sums[learner.position] = sum(p.double().sum().item() for p in pl_module.backbone.parameters())

    recorder = Recorder()
    run_pretrain(cfg, [recorder, BatchStart()])
    steps = list(csv_rows(tmp_path / cfg.name / "online_steps.csv"))
    # From the third batch on the memory (2 x 16 per step) is full enough: 16 + 32 candidates, k = 24 trained on.
    assert all(int(r["selected"]) == 24 for r in steps if int(r["stream_batch"]) >= 2)
    by_batch = {}
    for position, anchor_sum, model_sum in rule.records:
        by_batch.setdefault(position, []).append((anchor_sum, model_sum))
    anchors = [sums[0][0] for _, sums in sorted(by_batch.items())]
    for position, sums in by_batch.items():
        assert len({a for a, _ in sums}) == 1  # anchor unchanged within the batch
        assert sums[0][0] == pytest.approx(start_sums[position])  # anchor = model at the batch start
        assert sums[-1][1] != pytest.approx(sums[0][0])  # while the model moved (scoring starts at step 1)
    assert len(set(anchors)) == len(anchors)  # refreshed at every batch
    # The memory never holds a sample of the stream batch being trained on.
    for position, batch_indexes in enumerate(recorder.indexes):
        assert not rule.memory_seen.get(position, set()) & set(batch_indexes.tolist())
    assert len(rule.memory_seen) >= 8  # recorded at every stream batch from the second on


def csv_rows(path):
    import csv

    with open(path) as f:
        yield from csv.DictReader(f)


@pytest.mark.slow  # covered by tests/test_auto_resume.py (a killed online run continued, its step log truncated)
def test_resume_after_interruption_equals_uninterrupted(tiny_config, tmp_path):
    common = [*ONLINE, HALF, "++online.checkpoint_every=2", "++method.group_size=4", "++online.k=24"]
    full_cfg = tiny_config("online/embedded/barlow_rals", *common, "++name=full")
    full = torch.load(run_pretrain(full_cfg), weights_only=False)["state_dict"]

    cfg = tiny_config("online/embedded/barlow_rals", *common, "++name=cut")
    run_pretrain(cfg, [Recorder(stop_after=5)])  # stops after batch 5; last checkpoint at batch 4
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["online"]["position"] == 4
    resumed_cfg = tiny_config("online/embedded/barlow_rals", *common, "++name=cut", f"++resume={last}")
    resumed = torch.load(run_pretrain(resumed_cfg), weights_only=False)["state_dict"]
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    steps = list(csv_rows(tmp_path / "cut" / "online_steps.csv"))
    assert [int(r["stream_batch"]) for r in steps] == [b for b in range(10) for _ in range(3)]


def test_task_checkpoints_and_stream_metadata(tiny_config, tmp_path):
    cfg = tiny_config("online/embedded/simclr", *ONLINE[:2], HALF, "++online.checkpoint_every=100")
    run_pretrain(cfg)
    run_dir = tmp_path / cfg.name
    meta = json.loads((run_dir / "stream.json").read_text())
    assert meta["tasks"] == [2, 3, 4, 5] and meta["num_samples"] == 128
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.ckpt",
        "task2.ckpt",
        "task3.ckpt",
        "task4.ckpt",
        "task5.ckpt",
    ]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["++online.k=400"], "larger than the 384 candidates"),
        (["++online.stream_batch_size=120"], "not divisible by method.group_size 16"),
        (["++online.memory.capacity=0"], "capacity must be at least 1"),
        (["++online.steps_per_batch=0"], "steps_per_batch must be at least 1"),
    ],
)
def test_bad_online_settings_are_refused(tiny_config, overrides, message):
    cfg = tiny_config("online/embedded/barlow_rals", "++method.proj_hidden_dim=64", *overrides)
    with pytest.raises(SoloOsslError, match=message):
        run_pretrain(cfg)


def test_stream_probe_loss_is_logged_after_every_step(tiny_config, tmp_path):
    cfg = tiny_config("online/embedded/simclr", *ONLINE, HALF, "++online.probe_stream_loss=true")
    run_pretrain(cfg)
    rows = list(csv_rows(tmp_path / cfg.name / "online_steps.csv"))
    assert len(rows) == 30 and all(float(r["stream_probe_loss"]) > 0 for r in rows)


def test_the_heldout_probe_logs_every_step_and_leaves_training_unchanged(tiny_config, tmp_path):
    """online.probe_heldout (issue 46's mechanism test): the held-out set's loss after every local step, and the
    same weights bitwise as a run without it (its views come from their own generator, BN statistics untouched)."""
    overrides = [*ONLINE, HALF, "++online.max_stream_batches=4", "++method.group_size=4", "++online.k=24"]
    weights, rows = [], {}
    for probe in (0, 8):
        cfg = tiny_config("online/embedded/barlow_rals", *overrides, f"++online.probe_heldout={probe}")
        cfg.name = f"probe{probe}"
        weights.append(torch.load(run_pretrain(cfg), map_location="cpu", weights_only=False)["state_dict"])
        rows[probe] = list(csv_rows(tmp_path / cfg.name / "online_steps.csv"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert len(rows[8]) == 12 and all(float(r["heldout_probe_loss"]) > 0 for r in rows[8])
    assert all(r["heldout_probe_loss"] == "" for r in rows[0])
    losses = [float(r["heldout_probe_loss"]) for r in rows[8]]
    assert len(set(losses)) > 1  # the weights move under it
    cfg = tiny_config("online/embedded/barlow_rals", *overrides, "++online.probe_heldout=100000")
    with pytest.raises(SoloOsslError, match="online.probe_heldout=100000 but the test split has"):
        run_pretrain(cfg)


def test_a_run_log_shows_progress_and_results_without_lightning_noise(tmp_path):
    from .conftest import TINY, run_script

    args = ["--config-name", "online/embedded/barlow_rals", *TINY, *ONLINE, "++online.max_stream_batches=3"]
    args += ["++method.group_size=4", "++online.k=24"]
    # A fresh interpreter: what a terminal shows, Lightning's own log handlers included.
    result = run_script(
        "main_pretrain.py", *args, "++online.checkpoint_every=1", f"++output_dir={tmp_path}", process=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    for noise in ("weights_only", "💡 Tip", "LeafSpec", "validation_step", "estimate number of stepping batches"):
        assert noise not in log
    assert "checkpoint:" in result.stdout


def test_iid_stream_mixes_the_classes_of_the_same_samples(tiny_config, tmp_path):
    from solo_ossl.online.stream import stream_order

    targets = torch.arange(10).repeat_interleave(20)
    tasks = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    incremental = stream_order(targets, tasks, [2, 3, 4, 5], seed=1)
    iid = stream_order(targets, tasks, [2, 3, 4, 5], seed=1, order="iid")
    assert sorted(iid.tolist()) == sorted(incremental.tolist()) and torch.equal(
        iid, stream_order(targets, tasks, [2, 3, 4, 5], seed=1, order="iid")
    )
    assert len(set(targets[incremental[:16]].tolist())) == 2 and len(set(targets[iid[:16]].tolist())) > 4
    cfg = tiny_config("online/embedded/simclr", *ONLINE, HALF, "++online.stream.order=iid", "++eval.every=0")
    recorder = Recorder()
    run_pretrain(cfg, [recorder])
    assert len(set(torch.cat(recorder.indexes).tolist())) == 160
    assert json.loads((tmp_path / cfg.name / "stream.json").read_text())["task_end_batches"] == {}
    assert not list((tmp_path / cfg.name / "checkpoints").glob("task*.ckpt"))


def test_steps_within_budget():
    from solo_ossl.online.learner import steps_within_budget

    assert steps_within_budget(1.0, 0.1, 0.5) == 10
    assert steps_within_budget(1.0, 0.3, 0.5) == 3
    assert steps_within_budget(0.1, 1.0, 0.5) == 3  # the fewest a one-cycle schedule with pct_start 0.5 accepts
    assert steps_within_budget(0.1, 1.0, 0.25) == 5


def test_time_budget_plans_n_from_the_measured_step_time(tiny_config, tmp_path):
    class FakeClock(Callback):
        """Every local step takes 0.1 s: the clock is the optimizer step count."""

        def on_train_start(self, trainer, pl_module):
            pl_module.regime.learner.clock = lambda: 0.1 * trainer.global_step

    cfg = tiny_config("online/embedded/simclr", *ONLINE, HALF, "++online.time_budget_s=0.75", "++eval.every=0")
    recorder = Recorder()
    run_pretrain(cfg, [FakeClock(), recorder])
    assert recorder.steps == [3] + [7] * 9  # steps_per_batch first, then 0.75 s / 0.1 s per step
    steps = list(csv_rows(tmp_path / cfg.name / "online_steps.csv"))
    assert [int(r["step"]) for r in steps if int(r["stream_batch"]) == 5] == list(range(7))
    with pytest.raises(SoloOsslError, match="time_budget_s must be >= 0"):
        run_pretrain(tiny_config("online/embedded/simclr", *ONLINE, "++online.time_budget_s=-1"))


def test_an_unlabeled_image_folder_streams_without_labels(tiny_config, tmp_path):
    import numpy as np
    from PIL import Image

    from solo_ossl.args import load_linear_config
    from solo_ossl.run.linear import run_linear

    rng = np.random.default_rng(0)
    for i in range(96):  # two nested recordings, no class folders
        folder = tmp_path / "frames" / f"cam{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    data = ["++data.dataset=unlabeled_folder", f"++data.data_dir={tmp_path / 'frames'}", "++data.load_size=32"]
    rals = ["++method.group_size=4", "++online.k=24"]
    with pytest.raises(SoloOsslError, match="no classes to split into tasks"):
        run_pretrain(tiny_config("online/embedded/barlow_rals", *ONLINE, *data, *rals))
    cfg = tiny_config(
        "online/embedded/barlow_rals",
        *ONLINE,
        *data,
        "++online.stream.order=as_stored",
        "++method.group_size=4",
        "++online.k=24",
    )
    recorder = Recorder()
    final = run_pretrain(cfg, [recorder])
    assert torch.equal(torch.cat(recorder.indexes), torch.arange(96))  # every frame once, in path order
    steps = list(csv_rows(tmp_path / cfg.name / "online_steps.csv"))
    assert len(steps) == 6 * 3 and all(math.isfinite(float(r["loss"])) for r in steps)
    memory = torch.load(final, weights_only=False)["online"]["memory"]
    assert (memory["labels"] == -1).all() and len(memory["labels"]) == 96
    linear = load_linear_config(["--config-name", "linear/embedded", *data, f"++pretrained_ckpt={final}"])
    with pytest.raises(SoloOsslError, match="has no labels, and evaluation needs them"):
        run_linear(linear)
