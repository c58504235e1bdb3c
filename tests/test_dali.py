"""DALI pipelines on a tiny generated JPEG tree, as CPU pipelines (device_id=None); GPU variants skip without CUDA."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from solo_ossl.args.schema import DataConfig, ViewAugmentConfig
from solo_ossl.data import ImageFolderDataset, class_order, split_tasks, task_sample_indices
from solo_ossl.data.dali import DaliTransform, dali_available, file_index_dataset, use_dali
from solo_ossl.online.stream import StreamBatchSampler, stream_order
from solo_ossl.utils.errors import SoloOsslError

pytestmark = pytest.mark.skipif(not dali_available(), reason='NVIDIA DALI is not installed (pip install -e ".[dali]")')

CLASSES = ["c0", "c1", "c2", "c3"]
UNIT_STATS = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # outputs in [0, 1]


def write_jpeg_tree(root, per_class=3, colours=None):
    """``root/{train,val}/<class>/<i>.jpg``: noisy images of varying sizes with a class-specific mean colour."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                h, w = 40 + 6 * i, 48 - 4 * i
                mean = colours[c] if colours else 40 + 50 * c
                pixels = rng.normal(mean, 0 if colours else 30, size=(h, w, 3)).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg", quality=95)
    return root


def transform(root, kind, seed=0, **graph_args):
    files = file_index_dataset(ImageFolderDataset(root / "train", load_size=32))
    if kind == "multiview":
        graph_args.setdefault("view_cfgs", list(OmegaConf.structured(DataConfig()).augmentations))
    return files, DaliTransform(files, kind, dict(crop_size=24, **UNIT_STATS, **graph_args), seed=seed)


def test_multiview_pipeline_shapes_range_views_and_labels(tmp_path):
    files, views = transform(write_jpeg_tree(tmp_path), "multiview")
    assert files.classes == CLASSES and files.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [f.parent.name for f in files.files] == [CLASSES[t] for t in files.targets.tolist()]
    v1, v2 = views(torch.tensor([0, 4, 11, 4]))
    assert v1.shape == v2.shape == (4, 3, 24, 24) and v1.dtype == torch.float32
    assert v1.min() >= 0 and v1.max() <= 1 and v1.std() > 0.05
    assert not torch.allclose(v1, v2)
    assert not torch.allclose(v1[1], v1[3])  # the same file twice in a batch gets two different augmentations


def test_eval_and_linear_pipelines(tmp_path):
    root = write_jpeg_tree(tmp_path)
    _, evaluate = transform(root, "eval", resize_size=28)
    a, b = evaluate(torch.arange(12)), evaluate(torch.arange(12))
    assert a.shape == (12, 3, 24, 24) and torch.equal(a, b)  # resize + center crop: no randomness
    _, linear = transform(root, "linear_train")
    assert linear(torch.arange(5)).shape == (5, 3, 24, 24)


def test_same_seed_same_views_and_batches_beyond_the_pipeline_size(tmp_path):
    root = write_jpeg_tree(tmp_path)
    indices = torch.tensor([3, 1, 7, 7, 0, 9, 2])
    first = transform(root, "multiview", seed=3)[1](indices)
    again = transform(root, "multiview", seed=3)[1](indices)
    other = transform(root, "multiview", seed=4)[1](indices)
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    _, small = transform(root, "eval", resize_size=28)
    small.max_batch_size = 3
    _, whole = transform(root, "eval", resize_size=28)
    assert torch.equal(small(indices), whole(indices))  # run in chunks of 3, same result


def test_recipe_probabilities_and_solarization(tmp_path):
    # Constant-colour images: grayscale makes the channels equal, solarization maps 200 -> 55.
    root = write_jpeg_tree(tmp_path, colours=[(200, 60, 120)] * 4)
    off = dict(color_jitter_prob=0.0, gaussian_prob=0.0, solarization_prob=0.0, horizontal_flip_prob=0.0)
    gray_cfg = OmegaConf.structured(ViewAugmentConfig(**{**off, "gray_scale_prob": 0.3}))
    _, views = transform(root, "multiview", view_cfgs=[gray_cfg, gray_cfg])
    v1, _ = views(torch.arange(12).repeat(80))  # 960 draws: binomial std 0.015
    gray = ((v1[:, 0] - v1[:, 1]).abs().amax((1, 2)) < 0.02).float().mean().item()
    assert abs(gray - 0.3) < 0.06
    solar_cfg = OmegaConf.structured(ViewAugmentConfig(**{**off, "gray_scale_prob": 0.0, "solarization_prob": 1.0}))
    _, solarize = transform(root, "multiview", view_cfgs=[solar_cfg, gray_cfg])
    red = solarize(torch.arange(12))[0][:, 0].mean((1, 2)) * 255
    assert torch.allclose(red, torch.full_like(red, 55.0), atol=3)


def test_corrupt_jpeg_is_named(tmp_path):
    root = write_jpeg_tree(tmp_path)
    (root / "train" / "c2" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    files, views = transform(root, "multiview")
    bad = next(i for i, f in enumerate(files.files) if f.name == "bad.jpg")
    with pytest.raises(SoloOsslError, match="bad.jpg"):
        views(torch.tensor([0, bad, 5]))
    assert len(views(torch.tensor([0, 5]))) == 2  # a new pipeline is built after the failure


def test_stream_of_a_task_decodes_only_its_classes(tmp_path):
    files, views = transform(write_jpeg_tree(tmp_path, per_class=4), "multiview")
    tasks = split_tasks(class_order(4, seed=5), 2)
    order = stream_order(files.targets, tasks, [2], seed=0)
    assert sorted(order.tolist()) == sorted(task_sample_indices(files.targets, tasks, [2])[0].tolist())
    for batch in StreamBatchSampler(order, 3):
        indexes, x, targets = torch.utils.data.default_collate([files[i] for i in batch])
        assert set(targets.tolist()) <= set(tasks[1]) and torch.equal(x, indexes)
        assert views(x)[0].shape == (len(batch), 3, 24, 24)


def dali_overrides(root, device="cpu"):
    return [
        "++data.dataset=imagefolder",
        f"++data.data_dir={root}",
        "++data.loader=dali",
        f"++data.dali_device={device}",
        f"++accelerator={device}",
        "++data.crop_size=24",
        "++data.load_size=28",
        "++data.num_tasks=2",
        "++data.num_workers=1",
    ]


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "gpu",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")],
        ),
    ],
)
def test_online_and_linear_runs_through_dali(tmp_path, tiny_config, device):
    from solo_ossl.args import load_linear_config
    from solo_ossl.run.linear import run_linear
    from solo_ossl.run.pretrain import run_pretrain

    root = write_jpeg_tree(tmp_path / "tree", per_class=8)
    cfg = tiny_config(
        "online/embedded/barlow_rals",
        *dali_overrides(root, device),
        "++online.stream_batch_size=16",
        "++online.steps_per_batch=3",
        "++online.memory.batches=1.0",
        "++online.k=16",
        "++online.skip_first_task=false",
        "++method.group_size=4",
        "++name=dali-online",
    )
    final = run_pretrain(cfg)
    state = torch.load(final, weights_only=False)
    memory = state["online"]["memory"]["data"]
    assert memory.dtype == torch.long and memory.ndim == 1 and len(memory) == 32  # file indices, not images
    assert json.loads((tmp_path / "dali-online" / "stream.json").read_text())["num_samples"] == 32
    for mode in ("features", "augmented"):
        linear = load_linear_config(
            ["--config-name", "linear/embedded", *dali_overrides(root, device), f"++pretrained_ckpt={final}"]
            + [f"++output_dir={tmp_path}", "++max_epochs=1", "++precision=32", "++progress_bar=false", f"++mode={mode}"]
        )
        results = run_linear(linear)
        assert results["test_samples"] == 32 and 0 <= results["top1"] <= 100


def test_loader_errors(tiny_config):
    from solo_ossl.run.pretrain import run_pretrain

    with pytest.raises(SoloOsslError, match="needs data.dataset=imagefolder"):
        run_pretrain(tiny_config("pretrain/embedded/barlow", "++data.loader=dali"))
    with pytest.raises(SoloOsslError, match="key 'data.loader'.*expected one of \\[torch, dali\\]"):
        tiny_config("pretrain/embedded/barlow", "++data.loader=pil")
    if not torch.cuda.is_available():
        with pytest.raises(SoloOsslError, match="dali_device=gpu but the run trains on the cpu"):
            use_dali(OmegaConf.structured(DataConfig(dataset="imagefolder", loader="dali", dali_device="gpu")), None, 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_pipeline_matches_shapes(tmp_path):
    files = file_index_dataset(ImageFolderDataset(write_jpeg_tree(tmp_path) / "train", load_size=32))
    views = DaliTransform(files, "multiview", dict(view_cfgs=[ViewAugmentConfig()] * 2, crop_size=24, **UNIT_STATS))
    views.device = "gpu"
    v1, v2 = views(torch.arange(6, device="cuda"))
    assert v1.device.type == "cuda" and v1.shape == v2.shape == (6, 3, 24, 24)


def test_prefetched_runs_equal_runs_on_demand(tmp_path):
    root = write_jpeg_tree(tmp_path)
    _, prefetching = transform(root, "multiview", seed=3)
    _, on_demand = transform(root, "multiview", seed=3)
    first, second = torch.tensor([0, 5, 7, 2]), torch.tensor([11, 1, 3, 3])
    prefetching.prefetch(first)
    assert prefetching.pending_prefetch is not None
    for indices in (first, second):
        for a, b in zip(prefetching(indices), on_demand(indices), strict=True):
            assert torch.equal(a, b)
    prefetching.prefetch(first)  # not asked for: dropped, and the call still returns the batch asked for
    assert prefetching(second)[0].shape == (4, 3, 24, 24) and prefetching.pending_prefetch is None


def test_encoded_file_cache_is_bounded_and_serves_later_reads(tmp_path):
    folder = ImageFolderDataset(write_jpeg_tree(tmp_path) / "train", load_size=32)
    sizes = [f.stat().st_size for f in folder.files]
    cached = file_index_dataset(folder, cache_bytes=sizes[0] + sizes[1])
    first = cached.read(torch.tensor([0, 1, 2]))
    assert sorted(cached.cache) == [0, 1] and cached.cached_bytes == sizes[0] + sizes[1]  # file 2 did not fit
    for i in (0, 1, 2):
        folder.files[i].unlink()
    again = cached.read(torch.tensor([1, 0]))
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    with pytest.raises(SoloOsslError, match="cannot read image"):
        cached.read(torch.tensor([2]))


def test_pipeline_output_device_must_match_the_data(tmp_path):
    _, views = transform(write_jpeg_tree(tmp_path), "multiview")
    with pytest.raises(SoloOsslError, match="runs on the cpu but the data is on meta"):
        views(torch.arange(4, device="meta"))
    with pytest.raises(SoloOsslError, match="runs on the cpu but the data is on meta"):
        views.prefetch(torch.arange(4), torch.device("meta"))
