"""NVIDIA DALI pipelines over an image-folder tree (ImageNet-100): decoding and augmentation of JPEG files.

The loaders of a DALI run yield file indices, ``[indexes, indexes, targets]``; the transforms here turn a batch
of indices into images. So the class-incremental stream, the replay memory (which then stores file indices, not
decoded images) and the offline epochs all share one decode-and-augment path, and the online step re-augments
stream + memory with fresh random parameters at each of its N steps.

On a GPU the pipelines decode with ``device="mixed"`` (nvJPEG) and augment on the GPU; without one they are CPU
pipelines (``device_id=None``), the same graph, which is what the tests run. Each call is synchronous: the online
step decides which memory samples to draw only when it needs them.

A file that cannot be decoded stops the run with an error naming it (DALI's pipeline is unusable after a decode
failure, and silently skipping a sample would change the stream).
"""

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from solo_ossl.utils.device import resolve_accelerator
from solo_ossl.utils.errors import SoloOsslError

INSTALL_HINT = 'pip install -e ".[dali]" (package nvidia-dali-cuda120)'


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def require_dali() -> None:
    if not dali_available():
        raise SoloOsslError(f"data.loader=dali needs NVIDIA DALI: {INSTALL_HINT}, or set ++data.loader=torch")


def resolve_dali_device(requested: str, accelerator: str = "auto") -> str:
    """``gpu`` or ``cpu`` for ``data.dali_device`` = auto | gpu | cpu on a run whose ``accelerator`` is given: ``auto``
    follows the device the run trains on. A pipeline must output where training happens (DALI copies its output
    into the training tensor's memory: a CPU pipeline feeding a CUDA tensor would write host data to a device
    pointer), so a mismatch is an error."""
    training = resolve_accelerator(accelerator)
    if requested == "auto":
        return training
    if requested != training:
        raise SoloOsslError(
            f"data.dali_device={requested} but the run trains on the {training} (accelerator={accelerator}): "
            f"use ++data.dali_device=auto (or {training})"
        )
    return requested


class FileIndexDataset(Dataset):
    """The samples of an image-folder split as ``(index, index, target)``: decoding happens in the DALI transform,
    so the stream and the memory carry file indices.

    With ``cache_bytes`` > 0, the encoded bytes of files read are kept in RAM up to that many bytes (the first files
    read stay; the online step re-reads memory samples at every local step, drawn uniformly, so which files stay
    does not matter). ImageNet-100's training JPEGs are about 13 GB."""

    def __init__(self, files: list[Path], targets: torch.Tensor, classes: list[str], cache_bytes: int = 0) -> None:
        self.files, self.targets, self.classes = files, targets, classes
        self.cache_bytes = cache_bytes
        self.cache: dict[int, np.ndarray] = {}
        self.cached_bytes = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return index, index, self.targets[index]

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        """What the loader yields for these samples (their indices): replay memory stores and returns them, and
        the DALI transform decodes them."""
        return indices

    def read(self, indices: torch.Tensor) -> list[np.ndarray]:
        """Encoded bytes of the files at ``indices``."""
        return [self._read_one(i) for i in indices.tolist()]

    def where(self, i: int) -> str:
        """Sample ``i`` named for an error message."""
        return str(self.files[i])

    def decodes(self, i: int) -> bool:
        return _decodes(self.files[i])

    def _read_one(self, i: int) -> np.ndarray:
        encoded = self.cache.get(i)
        if encoded is not None:
            return encoded
        try:
            encoded = np.fromfile(self.files[i], dtype=np.uint8)
        except OSError as e:
            raise SoloOsslError(f"cannot read image {self.files[i]}: {e}") from e
        if self.cached_bytes + encoded.nbytes <= self.cache_bytes:
            self.cache[i] = encoded
            self.cached_bytes += encoded.nbytes
        return encoded


def _maybe(probability: float, dtype: str = "BOOL"):
    """A per-sample coin: BOOL for conditionals, INT32 for ``mirror``."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    return fn.random.coin_flip(probability=probability, dtype=getattr(types, dtype))


def _uniform(center: float, spread: float):
    import nvidia.dali.fn as fn

    return fn.random.uniform(range=(center - spread, center + spread))


def _normalize(images, mean, std, crop_size: int | None = None, mirror=None):
    """uint8 HWC to normalized float CHW (optionally center-cropped and flipped), as ``Normalize`` does."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    extra = {"crop": (crop_size, crop_size)} if crop_size else {}
    if mirror is not None:
        extra["mirror"] = mirror
    return fn.crop_mirror_normalize(
        images,
        dtype=types.FLOAT,
        output_layout="CHW",
        mean=[255 * m for m in mean],
        std=[255 * s for s in std],
        **extra,
    )


def dali_view(images, view_cfg, crop_size: int, mean, std):
    """One view of the recipe of ``solo_ossl.data.augment``: random resized crop, colour jitter, grayscale, gaussian blur,
    solarization, horizontal flip, each applied to a sample with its probability."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    images = fn.random_resized_crop(
        images,
        size=(crop_size, crop_size),
        random_area=(view_cfg.crop_min_scale, view_cfg.crop_max_scale),
        random_aspect_ratio=(3 / 4, 4 / 3),
    )
    if _maybe(view_cfg.color_jitter_prob):
        images = fn.color_twist(
            images,
            brightness=_uniform(1.0, view_cfg.brightness),
            contrast=_uniform(1.0, view_cfg.contrast),
            saturation=_uniform(1.0, view_cfg.saturation),
            hue=_uniform(0.0, 360 * view_cfg.hue),  # DALI's hue is in degrees, torchvision's in turns
        )
    if _maybe(view_cfg.gray_scale_prob):
        images = fn.hsv(images, saturation=0.0)
    if _maybe(view_cfg.gaussian_prob):
        images = fn.gaussian_blur(images, sigma=fn.random.uniform(range=(0.1, 2.0)))
    if _maybe(view_cfg.solarization_prob):
        # 255 - x for x >= 128, as torchvision's RandomSolarize(128); for uint8, 255 - x == x ^ 255.
        images = images ^ ((images >= 128) * types.Constant(255, dtype=types.UINT8))
    return _normalize(images, mean, std, mirror=_maybe(view_cfg.horizontal_flip_prob, "INT32"))


def _decode(device: str):
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    encoded = fn.external_source(name="encoded", dtype=types.UINT8)
    return fn.decoders.image(encoded, device="mixed" if device == "gpu" else "cpu", output_type=types.RGB)


def _multiview_graph(view_cfgs, crop_size, mean, std, device):
    images = _decode(device)
    return tuple(dali_view(images, v, crop_size, mean, std) for v in view_cfgs)


def _linear_train_graph(crop_size, mean, std, device):
    import nvidia.dali.fn as fn

    images = fn.random_resized_crop(_decode(device), size=(crop_size, crop_size), random_area=(0.08, 1.0))
    return (_normalize(images, mean, std, mirror=_maybe(0.5, "INT32")),)


def _eval_graph(resize_size, crop_size, mean, std, device):
    import nvidia.dali.fn as fn

    images = fn.resize(_decode(device), resize_shorter=resize_size)
    return (_normalize(images, mean, std, crop_size=crop_size),)


GRAPHS = {"multiview": _multiview_graph, "linear_train": _linear_train_graph, "eval": _eval_graph}


def _graph(kind: str, graph_args: dict, device: str):
    return GRAPHS[kind](**graph_args, device=device)


class DaliTransform(nn.Module):
    """Indices of ``dataset`` files -> the pipeline's outputs as float tensors on the indices' device.

    ``kind`` is ``multiview`` (pretraining/online views, a list), ``linear_train`` or ``eval`` (one tensor).
    The pipeline is built on first use, for the device the indices live on, which must be the pipeline's
    (``device``); batches larger than ``max_batch_size`` are run in chunks. Holds no weights, so it never appears
    in checkpoints.

    The pipeline executes asynchronously: ``prefetch(indices)`` reads the files and starts decoding and augmenting
    them, and the next call with the same indices returns the result. The online step prefetches the next local
    step's candidates (the stream batch and a memory draw that does not depend on the model) while the current step
    trains. Results do not depend on whether a batch was prefetched: DALI draws its random numbers per run, in
    order."""

    def __init__(
        self,
        dataset: FileIndexDataset,
        kind: str,
        graph_args: dict,
        device: str = "cpu",
        num_threads: int = 2,
        max_batch_size: int = 384,
        seed: int = 0,
    ) -> None:
        super().__init__()
        require_dali()
        self.dataset, self.kind, self.graph_args = dataset, kind, graph_args
        self.device, self.num_threads, self.max_batch_size, self.seed = device, num_threads, max_batch_size, seed
        self._pipeline = None
        self._scheduled: torch.Tensor | None = None  # indices of a prefetched run not yet collected

    @property
    def pending_prefetch(self) -> torch.Tensor | None:
        """The indices of a prefetched run not yet collected (None: nothing pending)."""
        return self._scheduled

    def _build(self, device: torch.device):
        from nvidia.dali.pipeline import pipeline_def

        device_id = None
        if self.device == "gpu":
            device_id = device.index if device.index is not None else torch.cuda.current_device()

        # Conditionals let a sample skip an op it does not draw (blur, solarization) instead of computing it.
        graph = pipeline_def(enable_conditionals=True)(_graph)
        pipeline = graph(
            self.kind,
            self.graph_args,
            self.device,
            batch_size=self.max_batch_size,
            num_threads=self.num_threads,
            device_id=device_id,
            seed=self.seed,
            exec_pipelined=True,
            exec_async=True,
            prefetch_queue_depth=1,
        )
        pipeline.build()
        return pipeline

    def _schedule(self, indices: torch.Tensor, device: torch.device) -> None:
        if self._pipeline is None:
            self._pipeline = self._build(device)
        self._pipeline.feed_input("encoded", self.dataset.read(indices))
        self._pipeline.schedule_run()
        self._scheduled = indices

    def _collect(self, indices: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        from nvidia.dali.plugin.pytorch import feed_ndarray

        self._scheduled = None
        try:
            outputs = self._pipeline.outputs()
        except RuntimeError as e:
            self._pipeline = None  # DALI invalidates a pipeline after an operator error
            raise self._decode_error(indices, e) from e
        tensors = []
        stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
        for out in outputs:
            dense = out.as_tensor()
            target = torch.empty(dense.shape(), dtype=torch.float32, device=device)
            feed_ndarray(dense, target, cuda_stream=stream)
            tensors.append(target)
        return tensors

    def _run_chunk(self, indices: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        if self._scheduled is not None and not torch.equal(self._scheduled, indices):
            self._collect(self._scheduled, device)  # a prefetch that was not asked for: drop it
        if self._scheduled is None:
            self._schedule(indices, device)
        return self._collect(indices, device)

    def _check_device(self, device: torch.device) -> None:
        expected = "cuda" if self.device == "gpu" else "cpu"
        if device.type != expected:
            raise SoloOsslError(
                f"the DALI pipeline runs on the {self.device} but the data is on {device} (it copies its output into "
                f"the training tensors): set ++data.dali_device=auto, or the accelerator to match"
            )

    def prefetch(self, indices: torch.Tensor, device: torch.device | None = None) -> None:
        """Start the run of a batch that a later call will ask for (one batch of at most ``max_batch_size``)."""
        if self._scheduled is not None or len(indices) > self.max_batch_size or len(indices) == 0:
            return
        device = device or indices.device
        self._check_device(device)
        self._schedule(indices.cpu(), device)

    def _decode_error(self, indices: torch.Tensor, error: RuntimeError) -> Exception:
        """Name the file DALI failed on (its message gives the sample's position in the batch, '#3')."""
        samples = indices.tolist()
        match = re.search(r"failure: '#(\d+)'", str(error))
        if match and int(match.group(1)) < len(samples):
            culprit = samples[int(match.group(1))]
        else:
            culprit = next((i for i in samples if not self.dataset.decodes(i)), None)
        if culprit is None:
            return error
        return SoloOsslError(f"cannot decode image {self.dataset.where(culprit)} (DALI); remove or replace the file")

    @torch.no_grad()
    def forward(self, indices: torch.Tensor, device: torch.device | None = None) -> list[torch.Tensor] | torch.Tensor:
        """The outputs for ``indices`` on ``device`` (default: the indices' device). Pass host indices and the
        training device to avoid reading device indices back (a sync on a GPU)."""
        if indices.is_floating_point() or indices.ndim != 1:
            raise SoloOsslError("a DALI transform takes a 1-D tensor of file indices (data.loader=dali)")
        device = device or indices.device
        self._check_device(device)
        chunks = [self._run_chunk(c.cpu(), device) for c in indices.split(self.max_batch_size)]
        outputs = [torch.cat(parts) for parts in zip(*chunks, strict=True)]
        return outputs if self.kind == "multiview" else outputs[0]


def _decodes(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, SyntaxError):
        return False
    return True


def file_index_dataset(image_folder, cache_bytes: int = 0) -> FileIndexDataset:
    return FileIndexDataset(image_folder.files, image_folder.targets, image_folder.classes, cache_bytes)


def check_loader(data_cfg, accelerator: str = "auto") -> None:
    if data_cfg.loader == "dali":
        require_dali()
        resolve_dali_device(data_cfg.dali_device, accelerator)


def use_dali(data_cfg, splits, seed: int, accelerator: str = "auto"):
    """For ``data.loader=dali``: the splits as file-index datasets and the DALI transforms over them (see
    ``dali_transforms``); for the torch loader, the splits unchanged and no transforms."""
    check_loader(data_cfg, accelerator)
    if data_cfg.loader != "dali":
        return splits, None
    cache = int(data_cfg.dali_cache_gb * 2**30)
    if data_cfg.dataset == "webdataset":  # the shards' encoded images by stream position; no test split
        from solo_ossl.data.shards import ShardBytes

        train, test = ShardBytes(splits.train), FileIndexDataset([], torch.empty(0, dtype=torch.long), [])
    else:
        train, test = file_index_dataset(splits.train, cache), file_index_dataset(splits.test)
    splits = dataclasses.replace(splits, train=train, test=test)
    device = resolve_dali_device(data_cfg.dali_device, accelerator)
    return splits, dali_transforms(data_cfg, train, test, splits.mean, splits.std, seed, device)


def dali_transforms(
    data_cfg, train: FileIndexDataset, test: FileIndexDataset, mean, std, seed: int, device: str
) -> dict:
    """The DALI transforms of a run: ``views`` and ``linear_train`` over the training files, ``eval`` over the test
    files and ``eval_train`` over the training files (feature extraction)."""
    threads = data_cfg.dali_threads or min(8, os.cpu_count() or 1)
    common = dict(device=device, num_threads=threads, seed=seed)
    crop, stats = data_cfg.crop_size, dict(mean=mean, std=std)
    return {
        "views": DaliTransform(
            train, "multiview", dict(view_cfgs=list(data_cfg.augmentations), crop_size=crop, **stats), **common
        ),
        "linear_train": DaliTransform(train, "linear_train", dict(crop_size=crop, **stats), **common),
        "eval": DaliTransform(test, "eval", dict(resize_size=data_cfg.load_size, crop_size=crop, **stats), **common),
        "eval_train": DaliTransform(
            train, "eval", dict(resize_size=data_cfg.load_size, crop_size=crop, **stats), **common
        ),
    }
