import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from solo_ossl.args.schema import DataConfig, ViewAugmentConfig
from solo_ossl.data import ImageFolderDataset, MultiViewAugment, build_datasets, class_order, split_tasks
from solo_ossl.data.datasets import EMBEDDED_PATH
from solo_ossl.data.tasks import task_sample_indices
from solo_ossl.utils.errors import SoloOsslError


def test_class_incremental_split_is_seeded_and_disjoint():
    order = class_order(100, seed=5)
    assert order == class_order(100, seed=5) and order != class_order(100, seed=6)
    tasks = split_tasks(order, 5)
    assert [len(t) for t in tasks] == [20] * 5 and sorted(sum(tasks, [])) == list(range(100))
    targets = torch.arange(100).repeat(3)
    idx = task_sample_indices(targets, tasks, [1, 3])
    assert set(targets[idx[0]].tolist()) == set(tasks[0]) and set(targets[idx[1]].tolist()) == set(tasks[2])
    with pytest.raises(SoloOsslError, match="equal tasks"):
        split_tasks(order, 7)


def test_embedded_dataset_is_shipped_and_real():
    cfg = OmegaConf.structured(DataConfig(dataset="embedded"))
    splits = build_datasets(cfg)
    assert EMBEDDED_PATH.stat().st_size < 8_000_000
    assert len(splits.train) == 2000 and len(splits.test) == 400 and splits.num_classes == 20
    _, image, _ = splits.train[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32) and image.float().std() > 10


def test_batched_augmentation_views_and_recipe_statistics():
    torch.manual_seed(0)
    views = [OmegaConf.structured(ViewAugmentConfig(gray_scale_prob=0.3, color_jitter_prob=0.0)) for _ in range(2)]
    augment = MultiViewAugment(views, 32, (0.0,) * 3, (1.0,) * 3)
    x = torch.randint(0, 256, (2000, 3, 32, 32), dtype=torch.uint8)
    v1, v2 = augment(x)
    assert v1.shape == v2.shape == (2000, 3, 32, 32) and v1.dtype == torch.float32
    assert not torch.allclose(v1, v2) and 0 <= v1.min() and v1.max() <= 1
    gray = ((v1[:, 0] - v1[:, 1]).abs().amax((1, 2)) < 1e-6).float().mean().item()
    assert abs(gray - 0.3) < 0.04  # 2000 draws: binomial std 0.01


def write_tree(root, corrupt=False):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                size = (40 + 7 * i, 36)
                Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(
                    root / split / cls / f"{i}.jpg"
                )
    if corrupt:
        (root / "train" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")


def test_image_folder_resizes_and_names_corrupt_files(tmp_path):
    write_tree(tmp_path)
    dataset = ImageFolderDataset(tmp_path / "train", load_size=24)
    assert dataset.classes == ["cat", "dog"] and dataset.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset[4][1].shape == (3, 24, 24) and dataset.load(torch.tensor([0, 5])).shape == (2, 3, 24, 24)
    (tmp_path / "train" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    broken = ImageFolderDataset(tmp_path / "train", load_size=24)
    with pytest.raises(SoloOsslError, match="bad.jpg"):
        broken.load(torch.arange(len(broken)))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_read_by_the_loader_stops_with_one_error_line(tmp_path, workers):
    from .conftest import TINY, run_script

    write_tree(tmp_path / "tree", corrupt=True)
    args = ["--config-name", "pretrain/embedded/barlow", *TINY[4:], "++data.dataset=imagefolder"]
    args += [f"++data.data_dir={tmp_path / 'tree'}", "++data.load_size=16", f"++data.num_workers={workers}"]
    args += [
        "++data.tasks=null",
        "++data.num_tasks=1",
        "++max_epochs=1",
        "++optimizer.batch_size=7",
        f"++output_dir={tmp_path}",
    ]
    result = run_script("main_pretrain.py", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: cannot decode image ") and "bad.jpg" in lines[0] and "Traceback" not in lines[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_leaves_an_unreadable_image_out_of_the_stream_and_counts_it(tmp_path, workers, capfd):
    import csv

    from solo_ossl.args import load_config
    from solo_ossl.run.pretrain import run_pretrain

    from .conftest import TINY

    write_tree(tmp_path / "tree", corrupt=True)  # 7 training images, dog/bad.jpg unreadable
    args = ["--config-name", "online/embedded/simclr_rals", *TINY[4:], "++data.dataset=imagefolder"]
    args += [f"++data.data_dir={tmp_path / 'tree'}", "++data.load_size=16", f"++data.num_workers={workers}"]
    args += ["++data.num_tasks=1", "++online.skip_first_task=false", "++online.stream_batch_size=4"]
    args += ["++online.steps_per_batch=3", "++online.k=4", "++online.memory.capacity=8"]
    args += ["++data.on_bad_image=skip", "++eval.every=0", f"++output_dir={tmp_path}"]
    runs = [run_pretrain(load_config([*args, f"++name=skip{i}"])) for i in range(2)]
    out = capfd.readouterr().out  # worker processes print too
    assert out.count("warning: skipped the unreadable image") >= 1 and "bad.jpg" in out
    assert "skipped 1 unreadable image(s) of the stream" in out
    first, second = (torch.load(r, weights_only=False) for r in runs)
    assert first["online"]["memory"]["size"] == 6  # the six readable images, in the stream's order, once each
    for key, value in first["state_dict"].items():  # deterministic: the same run again gives the same weights
        assert torch.equal(value, second["state_dict"][key]), key
    (metrics,) = (tmp_path / "skip0").glob("logs/version_*/metrics.csv")
    with metrics.open() as f:
        skipped = [float(r["skipped_images"]) for r in csv.DictReader(f) if r.get("skipped_images")]
    assert skipped[-1] == 1.0
