"""Evaluation (issue 13): weighted kNN, continual metrics, paired differences, the online kNN monitor, loggers and
the selection ablation, each against a naive reference where there is one."""

import csv
import math

import pytest
import torch

from solo_ossl.args import load_linear_config
from solo_ossl.compare import compute_matched_epochs, paired_difference
from solo_ossl.eval import continual_metrics, knn_accuracy, per_task_accuracy
from solo_ossl.run.linear import run_knn
from solo_ossl.run.pretrain import run_pretrain
from solo_ossl.utils.errors import SoloOsslError

from .conftest import run_script


def naive_knn(train_x, train_y, test_x, test_y, k, temperature):
    top1 = top5 = 0
    num_classes = int(train_y.max()) + 1
    for x, y in zip(test_x, test_y, strict=True):
        sims = [
            (float(x @ t) / (x.norm() * t.norm()).item(), int(label)) for t, label in zip(train_x, train_y, strict=True)
        ]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for sim, label in sims[:k]:
            votes[label] += math.exp(sim / temperature)
        ranked = sorted(range(num_classes), key=lambda c: -votes[c])
        top1 += ranked[0] == int(y)
        top5 += int(y) in ranked[:5]
    return 100 * top1 / len(test_y), 100 * top5 / len(test_y)


def test_weighted_knn_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(8, 16, generator=g)
    train_y = torch.arange(8).repeat(25)
    test_y = torch.arange(8).repeat(40)
    train_x = centers[train_y] + 0.9 * torch.randn(200, 16, generator=g)
    test_x = centers[test_y] + 0.9 * torch.randn(320, 16, generator=g)
    got = knn_accuracy(train_x, train_y, test_x, test_y, k=20, temperature=0.07)  # 320 test rows: two chunks
    expected = naive_knn(train_x, train_y, test_x, test_y, 20, 0.07)
    assert got == pytest.approx(expected)
    assert 12.5 < got[0] < 100  # better than chance, not trivial


def naive_metrics(a, r):
    t_count = len(a)
    average = sum(a[-1]) / t_count
    forgetting = sum(max(a[t][i] for t in range(t_count - 1)) - a[-1][i] for i in range(t_count - 1)) / (t_count - 1)
    forward = sum(a[i - 1][i] - r[i] for i in range(1, t_count)) / (t_count - 1)
    return average, forgetting, forward


def test_continual_metrics_match_their_definitions():
    a = [[60, 10, 12], [50, 55, 20], [45, 50, 58]]
    r = [9, 8, 11]
    got = continual_metrics(a, r)
    average, forgetting, forward = naive_metrics(a, r)
    assert got["average"] == pytest.approx(average)  # (45 + 50 + 58) / 3
    assert got["forgetting"] == pytest.approx(forgetting)  # ((60 - 45) + (55 - 50)) / 2 = 10
    assert got["forgetting"] == pytest.approx(10.0)
    assert got["forward_transfer"] == pytest.approx(forward)  # ((10 - 8) + (20 - 11)) / 2
    assert math.isnan(continual_metrics(a)["forward_transfer"])
    with pytest.raises(ValueError, match="T x T"):
        continual_metrics([[1, 2]])


def test_the_task_matrix_has_a_row_per_checkpoint_and_a_column_per_task(tmp_path):
    import csv

    from solo_ossl.compare.runner import task_matrices, write_task_matrix

    # The probes of the checkpoints after tasks 1, 2, 3: each holds the accuracy on every task's classes.
    probes = [
        {"linear_tasks": [60, 10, 12], "knn_tasks": [1, 2, 3]},
        {"linear_tasks": [50, 55, 20], "knn_tasks": [4, 5, 6]},
    ]
    probes.append({"linear_tasks": [45, 50, 58], "knn_tasks": [7, 8, 9]})
    matrices = task_matrices(probes, 3)
    assert matrices["linear"][0] == [60, 10, 12] and [row[0] for row in matrices["linear"]] == [60, 50, 45]
    metrics = {p: continual_metrics(m) for p, m in matrices.items()}
    assert metrics["linear"]["forgetting"] == pytest.approx(10.0)  # column-wise: task 1 from 60 to 45, task 2 55 to 50
    write_task_matrix(tmp_path, matrices, metrics)
    with (tmp_path / "task_matrix.csv").open() as f:
        cells = {(r["probe"], int(r["after_task"]), int(r["task"])): float(r["accuracy"]) for r in csv.DictReader(f)}
    assert cells[("linear", 1, 2)] == 10.0 and cells[("linear", 2, 1)] == 50.0 and cells[("knn", 3, 2)] == 8.0
    assert len(cells) == 2 * 9
    assert task_matrices(probes, 2)["linear"] == [[60, 10], [50, 55], [45, 50]]  # columns of a truncated sequence


def test_per_task_accuracy_splits_by_the_tasks_classes():
    targets = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    predictions = torch.tensor([0, 1, 0, 0, 0, 0, 2, 3])
    assert per_task_accuracy(predictions, targets, [[0, 1], [2, 3]]) == [75.0, 50.0]


def test_paired_difference_interval_is_students_t():
    got = paired_difference({0: 52.0, 1: 55.0, 2: 53.0}, {0: 50.0, 1: 51.0, 2: 51.5, 3: 40.0})
    diffs = [2.0, 4.0, 1.5]  # seed 3 has no pair
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    assert got["diffs"] == diffs and got["mean"] == pytest.approx(mean)
    assert (got["low"], got["high"]) == pytest.approx((mean - half, mean + half))
    assert math.isnan(paired_difference({0: 1.0}, {0: 0.5})["low"])


def test_compute_matched_epochs_match_ours_without_rals_back_propagated_views():
    stream, n = 40_000, 10  # tasks 2-5 of CIFAR-100
    ours = stream / 128 * n * 256 * 2
    assert compute_matched_epochs("cassle_cm", n) * stream * 2 == ours  # 20 epochs per task
    assert compute_matched_epochs("offline_cm", n) * 1.25 * stream * 2 == ours  # 16 epochs over all tasks


ONLINE = ["++online.stream_batch_size=16", "++online.steps_per_batch=3", "++online.skip_first_task=false"]


def metrics_rows(run_dir):
    (path,) = run_dir.glob("logs/version_*/metrics.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.long
def test_online_knn_monitor_logs_on_schedule_and_leaves_training_alone(tiny_config, tmp_path):
    common = [*ONLINE, "++data.synthetic_per_class=16", "++method.group_size=4", "++online.k=24"]
    monitored = tiny_config("online/embedded/barlow_rals", *common, "++eval.every=3", "++name=monitored")
    plain = tiny_config("online/embedded/barlow_rals", *common, "++eval.every=0", "++name=plain")
    with_monitor = torch.load(run_pretrain(monitored), weights_only=False)["state_dict"]
    without = torch.load(run_pretrain(plain), weights_only=False)["state_dict"]
    for key in without:  # the monitor draws no random numbers and touches no weights or BN statistics
        assert torch.equal(with_monitor[key], without[key]), key
    rows = [r for r in metrics_rows(tmp_path / "monitored") if r.get("knn_stream_batch")]
    positions = [int(float(r["knn_stream_batch"])) for r in rows]
    # every 3 stream batches, and at the task ends (2 batches of 16 per task: 2, 4, ..., 10)
    assert positions == sorted({*range(3, 11, 3), *range(2, 11, 2)})
    assert all(0 <= float(r["knn_top1"]) <= 100 for r in rows)
    assert not any(r.get("knn_top1") for r in metrics_rows(tmp_path / "plain"))
    assert (tmp_path / "monitored" / "online_curves.png").stat().st_size > 1000


def test_random_selection_trains_on_k_without_scoring(tiny_config, tmp_path):
    cfg = tiny_config(
        "online/embedded/barlow_rals", *ONLINE, "++method.group_size=4", "++online.k=24", "++online.selection=random"
    )
    online = torch.load(run_pretrain(cfg), weights_only=False)["online"]
    assert online["images_forward"] == online["images_backward"]  # no scoring passes
    with open(tmp_path / cfg.name / "online_steps.csv") as f:
        rows = [r for r in csv.DictReader(f) if int(r["stream_batch"]) >= 2]
    assert all(int(r["selected"]) == 24 for r in rows)
    shares = [float(r["stream_selected_ratio"]) for r in rows]
    assert sum(shares) / len(shares) == pytest.approx(1 / 3, abs=0.1)


def test_bad_selection_is_refused(tiny_config):
    with pytest.raises(SoloOsslError, match="unknown online.selection 'best'"):
        run_pretrain(tiny_config("online/embedded/barlow_rals", *ONLINE, "++online.selection=best"))


def test_tensorboard_logger_writes_events_beside_the_csv(tiny_config, tmp_path):
    cfg = tiny_config("pretrain/embedded/barlow", "++max_epochs=1", "++logger=tensorboard", "++name=tb")
    run_pretrain(cfg)
    assert list((tmp_path / "tb" / "tensorboard").rglob("events.out.tfevents.*"))
    assert metrics_rows(tmp_path / "tb")


def test_unknown_or_missing_logger_is_a_clear_error(tiny_config, tmp_path):
    with pytest.raises(SoloOsslError, match="key 'logger'.*expected one of \\[csv, tensorboard, wandb\\]"):
        tiny_config("pretrain/embedded/barlow", "++logger=mlflow")
    cfg = tiny_config("pretrain/embedded/barlow", "++logger=wandb")
    try:  # wandb is optional: without it, asking for it names the package to install
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(SoloOsslError, match="pip install wandb"):
            run_pretrain(cfg)
        return
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from solo_ossl.run.common import build_loggers

    loggers = build_loggers(cfg, tmp_path)  # with it, Weights & Biases logs beside metrics.csv
    assert [type(logger) for logger in loggers] == [CSVLogger, WandbLogger]


def test_main_knn_on_a_checkpoint(tiny_config, tmp_path):
    final = run_pretrain(tiny_config("pretrain/embedded/barlow", "++max_epochs=1", "++name=k"))
    out = tmp_path / "knn.json"
    proc = run_script(
        "main_knn.py",
        "--config-name",
        "linear/embedded",
        "++data.dataset=synthetic",
        "++data.synthetic_num_classes=10",
        "++data.synthetic_per_class=32",
        f"++pretrained_ckpt={final}",
        f"++output_json={out}",
        "++knn.k=5",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kNN (" in proc.stdout and out.is_file()
    cfg_random = load_linear_config(
        ["--config-name", "linear/embedded", "++data.dataset=synthetic", "++random_init=true", "++backbone.width=0.125"]
    )
    result = run_knn(cfg_random)
    assert 0 <= result["knn_top1"] <= 100 and result["test_samples"] > 0
