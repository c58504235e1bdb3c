import csv
import json
import shutil

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from solo_ossl.args import load_config
from solo_ossl.compare import PAPER_STRATEGIES, compare, main
from solo_ossl.data import class_order, split_tasks
from solo_ossl.model import build_model
from solo_ossl.modules import batch_stats_without_update
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.checkpoint import weights_fingerprint

from .conftest import TINY


def tiny_cassle_model(tiny_config, config):
    cfg = tiny_config(config, "++regime=cassle", "++cassle.proj_hidden_dim=32")
    return build_model(cfg, 10, (0.5,) * 3, (0.25,) * 3)


def test_distillation_trains_predictor_and_leaves_frozen_model_alone(tiny_config):
    for config in ("pretrain/embedded/barlow", "pretrain/embedded/simclr"):
        torch.manual_seed(0)
        model = tiny_cassle_model(tiny_config, config)
        frozen = {k: v.clone() for k, v in model.distiller.frozen.backbone.state_dict().items()}
        frozen.update({f"p.{k}": v.clone() for k, v in model.distiller.frozen.projector.state_dict().items()})
        views = [torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32)]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            z = [model(v) for v in views]
            distill = model.distiller.loss(model, views, z)
            optimizer.zero_grad()
            (model.ssl_loss(*z) + distill).backward()
            assert distill.item() > 0
            assert model.distiller.predictor[0].weight.grad.abs().sum() > 0
            assert all(p.grad is None for p in model.distiller.frozen.backbone.parameters())
            assert all(p.grad is None for p in model.distiller.frozen.projector.parameters())
            optimizer.step()
        after = dict(model.distiller.frozen.backbone.state_dict())
        after.update({f"p.{k}": v for k, v in model.distiller.frozen.projector.state_dict().items()})
        assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # incl. BN running statistics
        current = model.backbone.state_dict()
        assert not all(torch.equal(current[k], after[k]) for k in current)
        model.distiller.refresh(model)  # a new task starts from the current model
        assert all(torch.equal(current[k], v) for k, v in model.distiller.frozen.backbone.state_dict().items())


def naive_barlow(p: torch.Tensor, z: torch.Tensor, lamb: float, scale: float) -> float:
    """Barlow Twins' loss by loops: columns standardized with their biased std (eps 1e-5), C = P^T Z / N."""
    n, d = p.shape
    ps = [(p[:, j] - p[:, j].mean()) / (p[:, j].var(unbiased=False) + 1e-5).sqrt() for j in range(d)]
    zs = [(z[:, j] - z[:, j].mean()) / (z[:, j].var(unbiased=False) + 1e-5).sqrt() for j in range(d)]
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = float((ps[i] * zs[j]).sum()) / n
            total += (1 - c) ** 2 if i == j else lamb * c**2
    return scale * total


def test_barlow_twins_distiller_weighs_its_own_lambda_scale_and_distill_lamb(tiny_config):
    cfg = tiny_config(
        "pretrain/embedded/barlow",
        "++regime=cassle",
        "++cassle.proj_hidden_dim=32",
        "++cassle.distill_lamb=0.7",
        "++cassle.barlow_lamb=0.02",
        "++cassle.barlow_scale_loss=0.3",
        "++method.proj_output_dim=8",
    )
    torch.manual_seed(0)
    model = build_model(cfg, 10, (0.5,) * 3, (0.25,) * 3)
    views = [torch.randn(12, 3, 32, 32), torch.randn(12, 3, 32, 32)]
    outs = [model(v) for v in views]
    with torch.no_grad():
        distill = model.distiller.loss(model, views, outs).item()
        predictions = [model.distiller.predictor(o["z"]) for o in outs]
        with batch_stats_without_update(model):
            frozen = [model(v)["z"] for v in views]  # the frozen copy equals the model until it trains
    expected = 0.7 * sum(naive_barlow(p, z, 0.02, 0.3) for p, z in zip(predictions, frozen, strict=True)) / 2
    assert distill == pytest.approx(expected, rel=1e-4)


class IndexRecorder(Callback):
    def __init__(self) -> None:
        self.indexes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.indexes.append(batch[0].clone())


def test_cassle_and_offline_make_exactly_e_passes_over_their_own_data(tiny_config):
    # Synthetic data: 10 classes x 32 training images; 5 tasks of 2 classes = 64 images, batches of 32 divide it.
    epochs, common = 2, ["++optimizer.batch_size=32", "++cassle.proj_hidden_dim=32", "++data.num_tasks=5"]
    task_classes = split_tasks(class_order(10, 5), 5)
    targets = torch.arange(10).repeat_interleave(32)
    previous = run_pretrain(
        tiny_config("pretrain/embedded/barlow", *common, "++data.tasks=[1]", "++max_epochs=1", "++name=t1")
    )
    for task in range(2, 6):
        recorder = IndexRecorder()
        cfg = tiny_config(
            "pretrain/embedded/barlow",
            *common,
            f"++data.tasks=[{task}]",
            f"++max_epochs={epochs}",
            "++regime=cassle",
            f"++pretrained_ckpt={previous}",
            f"++name=cassle{task}",
        )
        previous = run_pretrain(cfg, [recorder])
        seen = torch.cat(recorder.indexes)
        assert set(targets[seen].tolist()) == set(task_classes[task - 1])  # nothing from other tasks
        counts = torch.bincount(seen, minlength=320)
        member = torch.isin(targets, torch.tensor(task_classes[task - 1]))
        assert counts[member].eq(epochs).all() and counts[~member].eq(0).all()
        assert len(seen) == epochs * 64
    recorder = IndexRecorder()
    offline = tiny_config(
        "pretrain/embedded/barlow", *common, "++data.tasks=null", f"++max_epochs={epochs}", "++name=offline"
    )
    run_pretrain(offline, [recorder])
    assert torch.bincount(torch.cat(recorder.indexes), minlength=320).eq(epochs).all()  # all tasks, task 1 included


def tiny_compare_args(out, *extra: str) -> list[str]:
    """The comparison runner on the embedded data with a tiny model, N = 3, one epoch per offline run, the sequence
    truncated to tasks 1-3 (a 3 x 3 task matrix)."""
    common = ["--dataset", "embedded", "--method", "barlow", "--steps", "3", "--output-dir", str(out), *TINY]
    tiny = ["++online.stream_batch_size=32", "++optimizer.batch_size=32", "++max_epochs=1", "++eval.every=0"]
    tiny.append("++data.last_task=3")
    return [*common, *tiny, *extra]


@pytest.mark.long
def test_comparison_runner_writes_reports_and_skips_finished_runs(tmp_path, capsys, monkeypatch):
    args = tiny_compare_args(tmp_path, "++cassle.proj_hidden_dim=32", "++online.k=64")
    pair = ("ours", "cassle")
    results = compare([*args, "--seeds", "0", "1", "--strategies", *pair])
    assert sorted((r["strategy"], r["seed"]) for r in results) == sorted((s, seed) for s in pair for seed in (0, 1))
    with (tmp_path / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["strategy"], r["seed"]) for r in rows} == {(s, str(seed)) for s in pair for seed in (0, 1)}
    assert all(float(r["images_backward"]) > 0 and float(r["train_seconds"]) > 0 for r in rows)
    assert all(0 <= float(r["knn_top1"]) <= 100 for r in rows)
    ours = next(r for r in rows if r["strategy"] == "ours")
    assert int(ours["images_forward"]) > int(ours["images_backward"])  # RALS scoring passes are counted
    for r in rows:  # compute per training image: tasks 2-3 (2 x 64 images), streamed or trained on task by task
        assert int(r["training_images"]) == 128
        assert float(r["forwards_per_image"]) == round(int(r["images_forward"]) / 128, 2)
        assert float(r["backwards_per_image"]) == round(int(r["images_backward"]) / 128, 2)
    for strategy in pair:  # tasks one after another: a 3 x 3 matrix (truncated) and its metrics
        run = tmp_path / f"{strategy}_3_seed0"
        with (run / "task_matrix.csv").open() as f:
            matrix = list(csv.DictReader(f))
        assert len(matrix) == 2 * 9 and (run / "task_matrix.png").stat().st_size > 1000
        assert {int(r["after_task"]) for r in matrix} == {1, 2, 3} == {int(r["task"]) for r in matrix}
        assert all(r[m] != "" for r in rows if r["strategy"] == strategy for m in ("average", "forgetting"))
    table = (tmp_path / "results.md").read_text()
    for label in ("CaSSLe", "| Ours |", "±", "Ours − CaSSLe", "95% interval", "per training image (fwd / bwd)"):
        assert label in table
    assert (tmp_path / "results.png").stat().st_size > 1000

    # Runs accumulate: new strategies later train only what is missing.
    before = {p: json.loads((tmp_path / f"{p}_3_seed0" / "result.json").read_text()) for p in pair}
    capsys.readouterr()
    again = compare([*args, "--seeds", "0", "--strategies", *PAPER_STRATEGIES, "ours_random"])
    out = capsys.readouterr().out
    assert out.count("done before, skipped") == 3  # task 1, Ours and CaSSLe of seed 0
    assert {(r["strategy"], r["seed"]) for r in again} >= {("ours_random", 0), ("offline", 0), ("ours", 1)}
    assert {r["strategy"]: r for r in again if r["seed"] == 0 and r["strategy"] in before} == before
    assert not (tmp_path / "offline_3_seed0" / "task_matrix.csv").exists()
    table = (tmp_path / "results.md").read_text()
    assert "Ours, random selection" in table and "Offline" in table and "Ours without RALS" in table

    # Another probe re-probes the finished checkpoints without training them again.
    import solo_ossl.compare.probe as probe_module
    import solo_ossl.compare.runner as runner_module

    modes = []
    real = probe_module.evaluate

    def spy(cfg, knn=True):
        modes.append(cfg.mode)
        return real(cfg, knn)

    monkeypatch.setattr(probe_module, "evaluate", spy)
    monkeypatch.setattr(runner_module, "run_pretrain", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(runner_module, "run_continual", lambda *a, **k: pytest.fail("trained again"))
    compare([*args, "--seeds", "0", "--strategies", "ours", "--probe", "augmented"])
    assert modes == ["augmented"]
    assert json.loads((tmp_path / "ours_3_seed0" / "result.json").read_text())["probe"] == "augmented"


def test_per_seed_task1_continues_only_from_the_same_weights(tmp_path, capsys):
    args = tiny_compare_args(tmp_path, "--task1", "per_seed", "--task1-epochs", "1")
    first = compare([*args, "--seeds", "0", "1", "--strategies", "offline"])
    seed0, seed1 = (tmp_path / "task1" / f"seed{s}" / "task1" / "final.ckpt" for s in (0, 1))
    assert seed0.is_file() and seed1.is_file()
    fingerprints = {r["seed"]: r["task1_fingerprint"] for r in first}
    assert fingerprints == {0: weights_fingerprint(seed0), 1: weights_fingerprint(seed1)}
    assert fingerprints[0] != fingerprints[1]  # each seed trains its own start
    assert all(r["machine"] for r in first)
    stored = json.loads((tmp_path / "task1" / "probe_seed0.json").read_text())
    assert stored["task1_fingerprint"] == fingerprints[0]

    # The checkpoint lost (a new session): retrained bitwise-equal here, so seed 0 goes on.
    shutil.rmtree(tmp_path / "task1" / "seed0")
    again = compare([*args, "--seeds", "0", "--strategies", "offline", "ours_no_rals"])
    assert {r["task1_fingerprint"] for r in again if r["seed"] == 0} == {fingerprints[0]}

    # Retrained to other weights (another machine's kernels): a new run of seed 0 refuses to join the old ones.
    shutil.rmtree(tmp_path / "task1" / "seed0")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "++method.proj_hidden_dim=48", "--seeds", "0", "--strategies", "ours"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "_seed0/result.json started from task-1" in error[0]
    assert not (tmp_path / "ours_3_seed0" / "result.json").exists()


def test_weights_fingerprint_reads_the_weights_only(tmp_path):
    weights = {"backbone.w": torch.arange(6.0).view(2, 3), "projector.b": torch.ones(3), "classifier.w": torch.ones(2)}
    torch.save({"state_dict": weights, "epoch": 1}, tmp_path / "a.ckpt")
    torch.save({"state_dict": {**weights, "classifier.w": torch.zeros(2)}, "epoch": 7}, tmp_path / "b.ckpt")
    nudged = {**weights, "backbone.w": weights["backbone.w"].clone()}
    nudged["backbone.w"][1, 2] = torch.nextafter(nudged["backbone.w"][1, 2], torch.tensor(10.0))
    torch.save({"state_dict": nudged}, tmp_path / "c.ckpt")
    a, b, c = (weights_fingerprint(tmp_path / f"{n}.ckpt") for n in "abc")
    assert a == b != c and len(a) == 16


def test_main_continual_runs_cassle_over_tasks_2_to_5_and_continues_after_an_interruption(tmp_path):
    from .conftest import run_script

    common = ["--config-name", "pretrain/embedded/barlow", *TINY, f"++output_dir={tmp_path}", "++max_epochs=1"]
    task1 = run_pretrain(load_config([*common, "++name=t1"]))
    args = [*common, f"++pretrained_ckpt={task1}", "++name=cassle", "++val_every_n_epochs=0"]
    done = run_script("main_continual.py", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    finals = [tmp_path / "cassle" / f"task{t}" / "final.ckpt" for t in range(2, 6)]
    assert done.stdout.strip().endswith(f"checkpoint: {finals[-1]}")
    for task, final in zip(range(2, 6), finals, strict=True):
        saved = torch.load(final, weights_only=False)["solo_ossl"]["config"]
        assert saved["data"]["tasks"] == [task] and saved["regime"] == "cassle"
        assert any(k.startswith("distiller.predictor.") for k in torch.load(final, weights_only=False)["state_dict"])
    # An interrupted sequence: task 4 and 5 lost; the rerun trains only those.
    stamps = {t: finals[t - 2].stat().st_mtime_ns for t in (2, 3)}
    for final in finals[2:]:
        final.unlink()
    again = run_script("main_continual.py", *args)
    assert again.returncode == 0 and again.stdout.count("done before") == 2
    assert all(finals[t - 2].stat().st_mtime_ns == stamps[t] for t in (2, 3)) and finals[-1].is_file()
    online = run_script("main_continual.py", "--config-name", "online/embedded/barlow", f"++pretrained_ckpt={task1}")
    assert online.returncode == 2 and "use a pretrain/ config" in online.stderr


def test_reports_order_and_name_a_strategy_this_code_does_not_know():
    # A newer version's row (or a registry of the user's own) in the same output folder: named by its key, last.
    from solo_ossl.compare.reports import label, sort_key

    cells = [("ours_from_the_future", 10, ""), ("ours", 10, ""), ("cassle", 10, "")]
    assert [c[0] for c in sorted(cells, key=sort_key)] == ["cassle", "ours", "ours_from_the_future"]
    assert label(("ours_from_the_future", 10, "mechanism")) == "ours_from_the_future [mechanism]"
