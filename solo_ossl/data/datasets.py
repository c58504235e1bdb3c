"""Datasets yielding ``(index, uint8 CHW image, target)``; augmentation happens later, batched, on the device.

All fixed-size sources (CIFAR via torchvision, .npz arrays, the embedded subset, synthetic data) become an
``ArrayDataset`` of uint8 images held in memory; folders of JPEGs become an ``ImageFolderDataset`` that decodes on
access. Both expose ``targets`` and ``load(indices)`` (a batch of raw images), which replay memory uses.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from solo_ossl.data.images import IMAGE_EXTENSIONS, decode_or_skip
from solo_ossl.utils.errors import SoloOsslError

EMBEDDED_PATH = Path(__file__).resolve().parent / "embedded" / "cifar100_subset.npz"
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def normalization_stats(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel (mean, std) that ``data.dataset``'s images are normalized with, on a 0-1 scale."""
    if dataset in ("imagefolder", "unlabeled_folder", "live_folder", "webdataset"):
        return IMAGENET_STATS
    return CIFAR10_STATS if dataset == "cifar10" else CIFAR100_STATS


class ArrayDataset(Dataset):
    def __init__(self, images: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise SoloOsslError(
                f"images must be uint8 [N, H, W, C] or [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[-1] in (1, 3):
            images = images.permute(0, 3, 1, 2)
        self.images = images.contiguous()
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        if len(self.images) != len(self.targets):
            raise SoloOsslError(f"{len(self.images)} images but {len(self.targets)} labels")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return index, self.images[index], self.targets[index]

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        return self.images[indices]


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>``; classes sorted by name. Images are resized (shorter side) and center-cropped to
    ``load_size`` so that they batch; random resized crops to the training size are taken from that.

    ``labeled=False``: every image under ``root`` (any depth), in path order, with target -1 (no class)."""

    def __init__(self, root: str | Path, load_size: int, labeled: bool = True, on_bad_image: str = "stop") -> None:
        root = Path(root)
        self.skip_bad = on_bad_image == "skip"
        self.skipped: set[int] = set()  # indices found unreadable (in this process)
        if not root.is_dir():
            what = "a folder of images" if not labeled else "a tree with train/ and val/"
            raise SoloOsslError(f"image folder {root} does not exist: set data.data_dir to {what}")
        self.load_size = load_size
        if not labeled:
            self.files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not self.files:
                raise SoloOsslError(f"image folder {root} holds no images ({sorted(IMAGE_EXTENSIONS)})")
            self.classes, self.targets = [], torch.full((len(self.files),), -1, dtype=torch.long)
            return
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        if not classes:
            raise SoloOsslError(f"image folder {root} has no class sub-folders (expected {root}/<class>/<image>)")
        self.files, targets = [], []
        for label, name in enumerate(classes):
            for file in sorted((root / name).iterdir()):
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    self.files.append(file)
                    targets.append(label)
        if not self.files:
            raise SoloOsslError(f"image folder {root} has class folders but no images ({sorted(IMAGE_EXTENSIONS)})")
        self.classes = classes
        self.targets = torch.tensor(targets)

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, index: int) -> torch.Tensor | None:
        if index in self.skipped:
            return None
        image = decode_or_skip(self.files[index], self.load_size, str(self.files[index]), self.skip_bad)
        if image is None:
            self.skipped.add(index)
        return image

    def __getitem__(self, index: int):
        return index, self._decode(index), self.targets[index]

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        images = [self._decode(int(i)) for i in indices]
        return torch.stack([x for x in images if x is not None])


def collate_readable(batch: list) -> list:
    """The default collation of the samples whose image could be decoded (``data.on_bad_image=skip`` leaves the
    others out of their batch)."""
    from torch.utils.data import default_collate

    return default_collate([sample for sample in batch if sample[1] is not None])


def loader_workers(dataset, requested: int) -> int:
    """DataLoader workers decode image files; in-memory arrays and file indices are faster in the main process."""
    return requested if isinstance(getattr(dataset, "dataset", dataset), ImageFolderDataset) else 0


def synthetic_arrays(num_classes: int, per_class: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is visible: a class-specific colour and stripe frequency plus noise (for tests)."""
    rng = np.random.default_rng(seed)
    n = num_classes * per_class
    labels = np.repeat(np.arange(num_classes), per_class)
    colours = rng.uniform(40, 215, size=(num_classes, 3))
    yy = np.arange(size)[None, :, None]
    freq = (labels % 4 + 1)[:, None, None] * np.pi / size
    stripes = 40 * np.sin(freq * yy * 2)
    images = colours[labels][:, None, None, :] + stripes[..., None] + rng.normal(0, 25, size=(n, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@dataclass
class Splits:
    train: Dataset  # an indexed dataset; a stream-only source (ShardIndex, LiveFolder) for webdataset and live_folder
    test: Dataset
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labeled: bool = True  # False: targets are -1 (an unlabeled folder); evaluation needs labels


def empty_split(size: int) -> "ArrayDataset":
    """A split without images (the test split of data that has none)."""
    return ArrayDataset(torch.empty((0, 3, size, size), dtype=torch.uint8), torch.empty(0, dtype=torch.long))


def _limit_per_class(dataset: ArrayDataset, per_class: int) -> ArrayDataset:
    """The first ``per_class`` samples of each class, in dataset order."""
    if per_class <= 0:
        return dataset
    rank = torch.zeros_like(dataset.targets)
    for c in dataset.targets.unique():
        member = dataset.targets == c
        rank[member] = torch.arange(int(member.sum()))
    keep = rank < per_class
    return ArrayDataset(dataset.images[keep], dataset.targets[keep])


def _load_npz(path: Path) -> tuple[ArrayDataset, ArrayDataset]:
    if not path.is_file():
        raise SoloOsslError(f"dataset file {path} does not exist: check data.data_dir")
    try:
        with np.load(path) as f:
            return ArrayDataset(f["x_train"], f["y_train"]), ArrayDataset(f["x_test"], f["y_test"])
    except (KeyError, ValueError, OSError) as e:
        raise SoloOsslError(f"{path} is not a dataset .npz with x_train/y_train/x_test/y_test: {e}") from e


def build_datasets(data_cfg, seed: int = 0) -> Splits:
    """Train/test datasets for ``data.dataset`` (see DataConfig)."""
    name = data_cfg.dataset
    stats = normalization_stats(name)
    if name in ("cifar10", "cifar100"):
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        try:
            train_raw = cls(data_cfg.data_dir, train=True, download=data_cfg.download)
            test_raw = cls(data_cfg.data_dir, train=False, download=data_cfg.download)
        except RuntimeError as e:
            raise SoloOsslError(
                f"{name} not found in {data_cfg.data_dir} ({e}); set data.data_dir or pass ++data.download=true"
            ) from e
        train, test = ArrayDataset(train_raw.data, train_raw.targets), ArrayDataset(test_raw.data, test_raw.targets)
    elif name == "npz":
        train, test = _load_npz(Path(data_cfg.data_dir))
    elif name == "embedded":
        train, test = _load_npz(EMBEDDED_PATH)
    elif name == "synthetic":
        n_cls, per = data_cfg.synthetic_num_classes, data_cfg.synthetic_per_class
        x, y = synthetic_arrays(n_cls, per + max(2, per // 4), data_cfg.crop_size, seed)
        is_test = np.tile(np.arange(per + max(2, per // 4)) >= per, n_cls)
        train, test = ArrayDataset(x[~is_test], y[~is_test]), ArrayDataset(x[is_test], y[is_test])
    elif name == "imagefolder":
        root = Path(data_cfg.data_dir)
        train = ImageFolderDataset(root / "train", data_cfg.load_size, on_bad_image=data_cfg.on_bad_image)
        test = ImageFolderDataset(root / "val", data_cfg.load_size, on_bad_image=data_cfg.on_bad_image)
        if train.classes != test.classes:
            raise SoloOsslError(f"{root}/train and {root}/val have different class folders")
        return Splits(train, test, len(train.classes), *stats)
    elif name == "webdataset":
        from solo_ossl.data.shards import index_shards

        index = index_shards(data_cfg.data_dir)
        mean, std = index.stats or stats
        return Splits(index, empty_split(data_cfg.load_size), max(index.num_classes, 1), mean, std, index.labeled)
    elif name == "live_folder":
        from solo_ossl.data.live import LiveFolder

        return Splits(LiveFolder(Path(data_cfg.data_dir)), empty_split(data_cfg.load_size), 1, *stats, labeled=False)
    else:  # unlabeled_folder (the schema's Dataset enum has no other value)
        train = ImageFolderDataset(
            data_cfg.data_dir, data_cfg.load_size, labeled=False, on_bad_image=data_cfg.on_bad_image
        )
        test = empty_split(data_cfg.load_size)
        # No classes: one placeholder output for the online classifier, whose loss is 0 without labels.
        return Splits(train, test, 1, *stats, labeled=False)
    train = _limit_per_class(train, data_cfg.train_per_class)
    num_classes = int(max(train.targets.max(), test.targets.max())) + 1
    return Splits(train, test, num_classes, *stats)
