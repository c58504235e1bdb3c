"""``python main_shards.py``: a dataset written as WebDataset shards. The training split is written in the stream
order that the same config streams (tasks, seed, ``online.stream.order`` and ``blurry``), so that
``++data.dataset=webdataset`` over the shards streams the very batches the dataset would; the test split in its
stored order (for evaluation elsewhere). Array datasets' images are written as PNG (lossless), an image folder's
files as they are; labels as ``cls`` where the data has them."""

import argparse
from collections.abc import Iterator
from pathlib import Path

import torch
from omegaconf import OmegaConf

from solo_ossl.args import PretrainConfig, load_config
from solo_ossl.data import build_datasets
from solo_ossl.data.datasets import ArrayDataset, ImageFolderDataset
from solo_ossl.data.shards import ShardSample, StreamRecord, encode_png, shard_pattern, write_shards
from solo_ossl.run.common import class_split
from solo_ossl.run.streams import StreamSource
from solo_ossl.run.validate import validate_pretrain
from solo_ossl.utils.errors import SoloOsslError

USAGE = "python main_shards.py --out DIR [--samples-per-shard 1000] [--split train|test] --config-name NAME [++key=value ...]"


def encoded(dataset, index: int) -> ShardSample:
    """Sample ``index`` of ``dataset`` as it is written: PNG of an array's image, an image folder's file as it is."""
    target = int(dataset.targets[index])
    if isinstance(dataset, ArrayDataset):
        return ShardSample(encode_png(dataset.images[index]), "png", target)
    if isinstance(dataset, ImageFolderDataset):
        path = dataset.files[index]
        extension = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
        return ShardSample(path.read_bytes(), extension, target)
    raise SoloOsslError(f"data.dataset={type(dataset).__name__} cannot be written as shards")


def write_dataset_shards(cfg, out_dir: Path, samples_per_shard: int, split: str = "train") -> str:
    """Write ``cfg``'s data as shards into ``out_dir``; the pattern that ``++data.data_dir`` takes."""
    if cfg.data.dataset in ("webdataset", "live_folder"):
        raise SoloOsslError(f"data.dataset={cfg.data.dataset} is a stream already: write shards of a stored dataset")
    validate_pretrain(cfg)
    splits = build_datasets(cfg.data, cfg.seed)
    _, task_classes = class_split(cfg, splits)
    if split == "train":
        stream = StreamSource.of_dataset(cfg, splits.train, task_classes)
        dataset, order, ends, order_name = splits.train, stream.order, stream.task_ends, str(cfg.online.stream.order)
    else:
        dataset, ends, order_name = splits.test, [], "as_stored"
        order = torch.arange(len(dataset))

    def samples() -> Iterator[ShardSample]:
        for i in order.tolist():
            yield encoded(dataset, i)

    record = StreamRecord(
        num_classes=splits.num_classes if splits.labeled else 0,
        order=order_name,
        seed=cfg.seed if split == "train" else None,
        task_ends=ends,
        image_size=int(dataset.images.shape[-1]) if isinstance(dataset, ArrayDataset) else cfg.data.load_size,
        stats=(splits.mean, splits.std),
        source={
            "dataset": str(cfg.data.dataset),
            "data_dir": cfg.data.data_dir,
            "split": split,
            "config": OmegaConf.to_container(cfg.online.stream, enum_to_str=True),
        },
    )
    sidecar = write_shards(samples(), out_dir, samples_per_shard, record, split)
    shards = -(-len(order) // samples_per_shard)
    pattern = shard_pattern(out_dir, split, shards)
    print(f"wrote {len(order)} samples in {shards} shard(s): {pattern} (index: {sidecar})")
    return pattern


def main_shards(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="main_shards.py", usage=USAGE, add_help=True)
    parser.add_argument("--out", required=True, help="the folder the shards and shards.json are written to")
    parser.add_argument("--samples-per-shard", type=int, default=1000)
    parser.add_argument("--split", choices=("train", "test"), default="train")
    args, config_args = parser.parse_known_args(argv)
    cfg = load_config(config_args, PretrainConfig)
    return write_dataset_shards(cfg, Path(args.out), args.samples_per_shard, args.split)
