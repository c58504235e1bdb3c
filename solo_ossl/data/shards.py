"""A stream stored as WebDataset tar shards: written in stream order by ``python main_shards.py``, read back in that
order one stream batch at a time (each process its part of every batch), from any stream position.

A shard holds samples keyed by their stream position (``000001234``), each an encoded image (``png`` for arrays,
the original file's ``jpg``/``png``/... for image folders) and, where the data is labeled, its class (``cls``). The
writer puts ``shards.json`` beside the shards: every shard's name and sample count (so that a resumed run opens the
shard its position falls in and skips to the sample, without reading the shards before it), the task boundaries
of a class-incremental stream, the number of classes and how the stream was ordered. Shards from elsewhere stream
too: without the sidecar their samples are counted by one pass over them, and the stream has no task boundaries.
"""

import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from solo_ossl.data.images import decode_or_skip, stack_images
from solo_ossl.utils.errors import SoloOsslError

SIDECAR = "shards.json"
SIDECAR_FORMAT = "solo-ossl-shards/1"
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp")  # the extensions a sample's image may have, the first found used
SHARD_NAME = "{split}-{index:06d}.tar"


def expand_urls(pattern: str) -> list[str]:
    """The shards of ``data.data_dir``: a brace pattern (``train-{000000..000009}.tar``), several patterns joined by
    ``::``, local paths, URLs or ``pipe:`` commands, as the ``webdataset`` package takes them."""
    import braceexpand

    urls = [url for part in pattern.split("::") for url in braceexpand.braceexpand(part)]
    local = [u for u in urls if "://" not in u and not u.startswith("pipe:")]
    missing = [u for u in local if not Path(u).is_file()]
    if missing:
        raise SoloOsslError(
            f"shard {missing[0]} does not exist ({len(missing)} of {len(urls)} missing): set data.data_dir to the "
            "shards' pattern, e.g. '<dir>/train-{000000..000009}.tar', or write them with python main_shards.py"
        )
    return urls


@dataclass
class ShardIndex:
    """Where every stream position lives: the shards in order and their sample counts, with what the writer
    recorded of the stream (``shards.json``)."""

    urls: list[str]
    counts: list[int]
    num_classes: int = 0  # 0: unlabeled
    order: str = "as_stored"  # how the writer ordered the stream (online.stream.order)
    seed: int | None = None
    task_ends: list[tuple[int, int]] = field(default_factory=list)  # (task, samples streamed through its end)
    image_size: int = 0  # 0: not recorded (the images are decoded to data.load_size)
    stats: tuple | None = None  # the source dataset's normalization (mean, std); None: ImageNet's

    @property
    def num_samples(self) -> int:
        return sum(self.counts)

    @property
    def labeled(self) -> bool:
        return self.num_classes > 0

    def locate(self, sample: int) -> tuple[int, int]:
        """(shard, offset in it) of stream position ``sample``; the end of the stream is (len(urls), 0)."""
        for shard, count in enumerate(self.counts):
            if sample < count:
                return shard, sample
            sample -= count
        return len(self.counts), sample

    def fingerprint(self) -> list:
        """What a checkpoint records of the stream, to refuse to resume over other shards."""
        return [[Path(u).name for u in self.urls], self.counts]


def read_sidecar(urls: list[str]) -> dict | None:
    """``shards.json`` beside the first shard (local shards only), or None."""
    first = urls[0]
    if "://" in first or first.startswith("pipe:"):
        return None
    path = Path(first).parent / SIDECAR
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    if meta.get("format") != SIDECAR_FORMAT:
        raise SoloOsslError(
            f"{path} is not a solo-ossl shard index ({SIDECAR_FORMAT}); remove it or rewrite the shards"
        )
    return meta


def raw_samples(urls: list[str]) -> Iterator[dict]:
    """The samples of ``urls`` in order, undecoded (the webdataset package reads local files, URLs and pipes)."""
    import webdataset as wds

    def unreadable(error: Exception) -> bool:
        raise SoloOsslError(f"cannot read the shards ({error}): check data.data_dir and that every shard is a tar")

    return iter(wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(handler=unreadable)))


def index_shards(pattern: str) -> ShardIndex:
    """The stream's index: from ``shards.json`` where the writer left one (its shard list must match), else by
    counting every shard's samples and reading their classes once."""
    urls = expand_urls(pattern)
    meta = read_sidecar(urls)
    if meta is not None:
        recorded = {s["name"]: s["samples"] for s in meta["shards"]}
        names = [Path(u).name for u in urls]
        if set(names) != set(recorded):
            raise SoloOsslError(
                f"data.data_dir names {len(names)} shards and {SIDECAR} lists {len(recorded)} others: give the "
                "pattern of every shard the writer wrote (its shards.json lists them)"
            )
        return ShardIndex(
            urls,
            [recorded[n] for n in names],
            meta["num_classes"],
            meta["order"],
            meta.get("seed"),
            [tuple(end) for end in meta["task_ends"]],
            meta.get("image_size", 0),
            tuple(meta["stats"]) if meta.get("stats") else None,
        )
    counts, classes = [], -1
    for url in urls:
        count = 0
        for sample in raw_samples([url]):
            count += 1
            if "cls" in sample:
                classes = max(classes, int(sample["cls"]))
        counts.append(count)
    return ShardIndex(urls, counts, classes + 1)


def image_bytes(sample: dict) -> bytes:
    for key in IMAGE_KEYS:
        if key in sample:
            return sample[key]
    raise SoloOsslError(
        f"sample {sample.get('__key__')} of {sample.get('__url__')} has no image ({', '.join(IMAGE_KEYS)}; it has "
        f"{', '.join(k for k in sample if not k.startswith('__'))}): write images under one of those extensions"
    )


class ShardBatches(IterableDataset):
    """This process's part of stream batches ``start`` .. ``stop`` - 1 (``batch_size`` samples each, the stream cut
    at ``num_samples``), as ``(stream positions, uint8 images, targets)``: the part of each batch that
    ``StreamBatchSampler`` gives rank ``rank`` of ``world`` over an indexed dataset. Every process reads the same
    bytes and decodes only its part; DataLoader workers take whole stream batches in turn (worker w the batches
    ``start + w``, ``start + w + workers``, ...), which the loader returns in order."""

    def __init__(
        self,
        index: ShardIndex,
        batch_size: int,
        num_samples: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
        load_size: int = 32,
        skip_bad: bool = False,
        store: "ShardBytes | None" = None,
    ) -> None:
        self.index, self.batch_size, self.num_samples = index, batch_size, num_samples
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.load_size, self.skip_bad = load_size, skip_bad
        self.store = store  # DALI decodes: the encoded images go there, and batches carry stream positions

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def batch_bounds(self, batch: int) -> tuple[int, int]:
        """Stream positions [first, end) of stream batch ``batch``."""
        first = batch * self.batch_size
        return first, min(first + self.batch_size, self.num_samples)

    def share(self, batch: int) -> torch.Tensor:
        """The stream positions of this process's part of stream batch ``batch``."""
        return torch.arange(*self.batch_bounds(batch)).tensor_split(self.world)[self.rank]

    def samples_from(self, position: int) -> Iterator[dict]:
        """Raw samples from stream position ``position`` on: the shard it falls in is opened first, the samples
        before it in that shard are skipped undecoded."""
        shard, offset = self.index.locate(position)
        samples = raw_samples(self.index.urls[shard:])
        next(itertools.islice(samples, offset, offset), None)  # skip ``offset`` samples, undecoded
        return samples

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.start >= self.stop:
            return
        samples = self.samples_from(self.batch_bounds(self.start)[0])
        for batch in range(self.start, self.stop):
            first, end = self.batch_bounds(batch)
            raw = list(itertools.islice(samples, end - first))
            if len(raw) < end - first:
                raise SoloOsslError(
                    f"the shards end after {first + len(raw)} samples, and their index lists {self.index.num_samples}: "
                    f"a shard was cut or replaced; write the shards again, or remove {SIDECAR} to count them"
                )
            if (batch - self.start) % workers != worker:
                continue
            mine = self.share(batch)
            taken = [raw[int(p) - first] for p in mine]
            yield self.decode(mine, taken) if self.store is None else self.deposit(mine, taken)

    def deposit(self, positions: torch.Tensor, raw: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For DALI: the encoded images into the store; ``(positions, positions, targets)``, as an image folder's
        file indices travel."""
        for position, sample in zip(positions.tolist(), raw, strict=True):
            self.store.put(position, image_bytes(sample))
        targets = torch.tensor([int(s["cls"]) if "cls" in s else -1 for s in raw], dtype=torch.long)
        return positions, positions.clone(), targets

    def decode(self, positions: torch.Tensor, raw: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, targets, kept = [], [], []
        for position, sample in zip(positions.tolist(), raw, strict=True):
            where = f"{sample['__url__']}:{sample['__key__']}"
            image = decode_or_skip(io.BytesIO(image_bytes(sample)), self.load_size, where, self.skip_bad)
            if image is None:
                continue
            images.append(image)
            targets.append(int(sample["cls"]) if "cls" in sample else -1)
            kept.append(position)
        stacked = stack_images(images, self.load_size)
        return torch.tensor(kept, dtype=torch.long), stacked, torch.tensor(targets, dtype=torch.long)


class ShardBytes:
    """For ``data.loader=dali``: encoded images by stream position, what the DALI transform decodes (its dataset, as
    an image folder's ``FileIndexDataset`` is). The stream's loader puts each stream batch's images here; the replay
    memory holds stream positions, whose images stay while the memory holds them (``keep``). A position not held
    (a resumed run's memory) is read again from its shard, every shard needed read once."""

    def __init__(self, index: ShardIndex) -> None:
        self.index = index
        self.encoded: dict[int, np.ndarray] = {}
        self.targets = torch.empty(0, dtype=torch.long)  # no evaluation over shards

    def __len__(self) -> int:
        return self.index.num_samples

    def put(self, position: int, data: bytes) -> None:
        self.encoded[position] = np.frombuffer(data, dtype=np.uint8)

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        """What the memory stores and returns for these samples: their positions (the DALI transform decodes them)."""
        return indices

    def read(self, indices: torch.Tensor) -> list[np.ndarray]:
        """The encoded images of stream positions ``indices``."""
        positions = indices.tolist()
        missing = sorted({p for p in positions if p not in self.encoded})
        if missing:
            self.fetch(missing)
        return [self.encoded[p] for p in positions]

    def fetch(self, positions: list[int]) -> None:
        """Read the images of ``positions`` from their shards (each shard that holds one, once)."""
        by_shard: dict[int, set[int]] = {}
        for position in positions:
            shard, offset = self.index.locate(position)
            if shard >= len(self.index.urls):
                raise SoloOsslError(
                    f"stream position {position} is beyond the shards' {self.index.num_samples} samples"
                )
            by_shard.setdefault(shard, set()).add(offset)
        for shard, offsets in by_shard.items():
            first = sum(self.index.counts[:shard])
            for offset, sample in enumerate(raw_samples([self.index.urls[shard]])):
                if offset in offsets:
                    self.put(first + offset, image_bytes(sample))
                if offset >= max(offsets):
                    break

    def keep(self, held: set[int], before: int) -> None:
        """Drop the images of positions before ``before`` (streamed) that the memory does not hold (``held``)."""
        for position in [p for p in self.encoded if p < before and p not in held]:
            del self.encoded[position]

    def where(self, position: int) -> str:
        shard, offset = self.index.locate(position)
        return f"{self.index.urls[shard]} (sample {offset} of the shard, stream position {position})"

    def decodes(self, position: int) -> bool:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.read(torch.tensor([position]))[0].tobytes())) as img:
                img.load()
        except (OSError, SyntaxError):
            return False
        return True


@dataclass
class ShardSample:
    """One sample to write: its encoded image, the image's extension and its class (-1: none)."""

    image: bytes
    extension: str
    target: int = -1


def encode_png(image: torch.Tensor) -> bytes:
    """A uint8 CHW image as PNG (lossless: the stream decodes the very pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class StreamRecord:
    """What ``shards.json`` records of the stream besides its shards."""

    num_classes: int
    order: str
    seed: int | None
    task_ends: list[tuple[int, int]]
    image_size: int
    stats: tuple
    source: dict


def write_shards(
    samples: Iterable[ShardSample], out_dir: Path, samples_per_shard: int, record: StreamRecord, split: str = "train"
) -> Path:
    """``samples`` in order into ``out_dir/<split>-000000.tar`` ... (each sample keyed by its stream position), and
    ``shards.json`` beside them; the sidecar's path."""
    import webdataset as wds

    if samples_per_shard < 1:
        raise SoloOsslError(f"--samples-per-shard must be at least 1, got {samples_per_shard}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    writer = None
    for position, sample in enumerate(samples):
        if position % samples_per_shard == 0:
            if writer is not None:
                writer.close()
            name = SHARD_NAME.format(split=split, index=len(shards))
            writer = wds.TarWriter(str(out_dir / name))
            shards.append({"name": name, "samples": 0})
        entry = {"__key__": f"{position:09d}", sample.extension: sample.image}
        if sample.target >= 0:
            entry["cls"] = sample.target
        writer.write(entry)
        shards[-1]["samples"] += 1
    if writer is not None:
        writer.close()
    if not shards:
        raise SoloOsslError("the stream to write is empty: check the dataset and the tasks it streams")
    meta = {"format": SIDECAR_FORMAT, "shards": shards, "num_samples": sum(s["samples"] for s in shards)}
    path = out_dir / SIDECAR
    path.write_text(json.dumps({**meta, **asdict(record)}, indent=1))
    return path


def shard_pattern(out_dir: Path, split: str, shards: int) -> str:
    """The brace pattern naming the ``shards`` shards that ``write_shards`` wrote."""
    if shards == 1:
        return str(out_dir / SHARD_NAME.format(split=split, index=0))
    return str(out_dir / f"{split}-{{000000..{shards - 1:06d}}}.tar")
