"""Where a stream's batches come from (``data.dataset``): a dataset indexed up front (every array dataset and image
folder), WebDataset shards read in their stored order, or a live folder. A source says how many samples the stream
holds (None: open-ended), where its tasks end, and builds the loader of this process's part of stream batches
``start`` .. ``stop`` - 1; what it must remember across a restart travels in the checkpoint as a Lightning
callback's state. A new source is one class here and an entry in ``STREAM_SOURCES``."""

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from solo_ossl.data.datasets import collate_readable, loader_workers
from solo_ossl.data.live import LiveBatches
from solo_ossl.data.shards import ShardBatches
from solo_ossl.online.stream import StreamBatchSampler, task_ends
from solo_ossl.run.common import configured_stream
from solo_ossl.utils.errors import SoloOsslError


class StreamSource:
    """An indexed dataset streamed in ``online.stream.order`` (``solo_ossl.online.stream``)."""

    def __init__(self, setup, rank: int, world: int) -> None:
        self.cfg, self.dataset, self.rank, self.world = setup.cfg, setup.splits.train, rank, world
        self.tasks, segments = configured_stream(self.cfg, self.dataset.targets, setup.task_classes)
        self.order = torch.cat(segments)
        self.task_ends = task_ends(segments, self.tasks) if self.cfg.online.stream.order == "class_incremental" else []
        self.sampler: StreamBatchSampler | None = None

    @classmethod
    def of_dataset(cls, cfg, dataset, task_classes: list[list[int]]) -> "StreamSource":
        """The stream one process reads from ``dataset`` without a run's setup (the shard writer, tests)."""
        return cls(SimpleNamespace(cfg=cfg, splits=SimpleNamespace(train=dataset), task_classes=task_classes), 0, 1)

    @property
    def num_samples(self) -> int | None:
        return len(self.order)

    def cut(self, num_samples: int) -> None:
        """Stream only the first ``num_samples`` samples (whole selection units per process)."""
        self.order = self.order[:num_samples]

    def resume(self, checkpoint: dict) -> None:
        """Check or restore what this source recorded in ``checkpoint``."""

    def callbacks(self, run_dir: Path) -> list[Callback]:
        return []

    def loader(self, batch_size: int, start: int, stop: int) -> DataLoader:
        self.sampler = StreamBatchSampler(self.order, batch_size, start, self.rank, self.world)
        self.sampler.batches = self.sampler.batches[:stop]
        workers = loader_workers(self.dataset, self.cfg.data.num_workers)
        return DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=workers, collate_fn=collate_readable)

    def requested(self, batch: int) -> int:
        """Samples this process asked for in the ``batch``-th stream batch of this run (those received are fewer by
        the unreadable)."""
        return len(self.sampler.batches[self.sampler.start + batch])


def refuse_random_access(cfg, what: str) -> None:
    if cfg.online.memory.store != "images":
        raise SoloOsslError(
            f"{what} are read once, in order: the memory must hold images; set ++online.memory.store=images"
        )


class ShardPosition(Callback):
    """A checkpoint's record of the shards it streamed and where it stopped in them (``shard``, ``offset``)."""

    def __init__(self, source: "ShardSource") -> None:
        self.source, self.position = source, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.position = pl_module.regime.position
        store = self.source.store
        if store is not None:  # DALI: the streamed images that the memory no longer holds go
            memory = pl_module.regime.learner.memory
            held = set(memory.data[: len(memory)].tolist()) if memory.data is not None else set()
            store.keep(held, self.position * self.source.batch_size)

    def state_dict(self) -> dict:
        index = self.source.index
        shard, offset = index.locate(min(self.position * self.source.batch_size, self.source.samples))
        url = index.urls[shard] if shard < len(index.urls) else ""
        return {"shard": url, "offset": offset, "shards": index.fingerprint()}


class ShardSource(StreamSource):
    """WebDataset shards (``data.data_dir``: their pattern), streamed in their stored order: the order their writer
    gave them (``shards.json``), with its task ends where that order was class-incremental."""

    def __init__(self, setup, rank: int, world: int) -> None:
        self.cfg, self.rank, self.world = setup.cfg, rank, world
        # With DALI, the training split is the store of encoded images that DALI decodes, over the shards' index.
        self.store = setup.splits.train if setup.dali else None
        self.index = self.store.index if setup.dali else setup.splits.train
        if not setup.dali:
            refuse_random_access(self.cfg, "shards")
        order, written = self.cfg.online.stream.order, self.index.order
        if order not in ("as_stored", written):
            raise SoloOsslError(
                f"the shards were written in the {written} order and online.stream.order={order}: shards stream in "
                f"their stored order; write them again with ++online.stream.order={order}, or set "
                "++online.stream.order=as_stored"
            )
        if self.index.seed is not None and self.index.seed != self.cfg.seed and rank == 0:
            print(
                f"note: the shards' stream order was drawn with seed {self.index.seed}, not this run's {self.cfg.seed}"
            )
        self.task_ends = self.index.task_ends if written == "class_incremental" else []
        self.tasks = [task for task, _ in self.index.task_ends]
        self.samples, self.batch_size = self.index.num_samples, 0
        self.batches: ShardBatches | None = None

    @property
    def num_samples(self) -> int | None:
        return self.samples

    def cut(self, num_samples: int) -> None:
        self.samples = num_samples

    def resume(self, checkpoint: dict) -> None:
        saved = checkpoint.get("callbacks", {}).get(ShardPosition.__qualname__)
        if saved is not None and saved["shards"] != self.index.fingerprint():
            raise SoloOsslError(
                "the checkpoint streamed other shards (their names or sample counts differ): resume with the shards "
                "it streamed, or give this run another ++name"
            )

    def callbacks(self, run_dir: Path) -> list[Callback]:
        return [ShardPosition(self)]

    def loader(self, batch_size: int, start: int, stop: int) -> DataLoader:
        data = self.cfg.data
        self.batch_size = batch_size
        self.batches = ShardBatches(
            self.index,
            batch_size,
            self.samples,
            start,
            stop,
            self.rank,
            self.world,
            data.load_size,
            data.on_bad_image == "skip",
            self.store,
        )
        # DALI decodes in its own threads; the loader only reads the tars, in this process, into the store.
        workers = 0 if self.store is not None else data.num_workers
        return DataLoader(self.batches, batch_size=None, num_workers=workers)

    def requested(self, batch: int) -> int:
        return len(self.batches.share(self.batches.start + batch))


class LiveFiles(Callback):
    """The live folder's files of every stream batch trained, in the checkpoint (a restart skips them) and in the run
    folder's ``stream_files.csv`` (stream_batch, file, status: trained, unreadable or dropped); ``pending_files``
    and ``dropped_files`` (cumulative) in metrics.csv."""

    def __init__(self, source: "LiveSource", csv_path: Path) -> None:
        self.source, self.csv_path = source, csv_path
        self.records: list[tuple[int, str, str]] = []
        self.dropped = 0  # files dropped so far (data.live.when_behind=drop_oldest)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        position = pl_module.regime.position - 1
        live = self.source.batches
        kept = set(batch[0].tolist())
        files = live.files_of.pop(position)
        rows = [(position, name, "trained" if i in kept else "unreadable") for i, name in enumerate(files)]
        dropped = live.queue.dropped
        rows += [(position, name, "dropped") for name in dropped]
        live.queue.dropped = []
        self.records += rows
        self.dropped += len(dropped)
        if trainer.is_global_zero:
            with self.csv_path.open("a", newline="") as f:
                csv.writer(f).writerows(rows)
        pl_module.log("pending_files", float(len(live.queue.waiting) + len(live.queue.on_disk)), on_step=True)
        pl_module.log("dropped_files", float(self.dropped), on_step=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and self.source.batches is not None:
            print(f"the live stream stopped: {self.source.batches.stop_reason}")

    def state_dict(self) -> dict:
        return {"records": [list(r) for r in self.records]}

    def load_state_dict(self, state: dict) -> None:
        self.records = [tuple(r) for r in state["records"]]
        self.dropped = sum(status == "dropped" for _, _, status in self.records)


class LiveSource(StreamSource):
    """Image files landing in ``data.data_dir`` (``solo_ossl.data.live``): an open-ended stream without labels or
    tasks, read by one process."""

    def __init__(self, setup, rank: int, world: int) -> None:
        self.cfg, self.rank, self.world = setup.cfg, rank, world
        refuse_random_access(self.cfg, "a live folder's files")
        if world > 1:
            raise SoloOsslError("a live folder streams into one process: set ++devices=1 ++num_nodes=1")
        self.tasks, self.task_ends, self.batches = [], [], None
        self.recorder = LiveFiles(self, setup.run_dir / "stream_files.csv")
        self.unit = setup.model.regime.unit  # a batch cut short at the idle timeout keeps whole selection units

    @property
    def num_samples(self) -> int | None:
        return None

    def resume(self, checkpoint: dict) -> None:
        saved = checkpoint.get("callbacks", {}).get(LiveFiles.__qualname__)
        if saved is None:
            raise SoloOsslError("the checkpoint holds no live folder's record: resume it with its own data.dataset")
        self.recorder.load_state_dict(saved)

    def callbacks(self, run_dir: Path) -> list[Callback]:
        # The record of the trained files, written again from the checkpoint's (a killed run's later rows go).
        with self.recorder.csv_path.open("w", newline="") as f:
            csv.writer(f).writerows([("stream_batch", "file", "status"), *self.recorder.records])
        return [self.recorder]

    def loader(self, batch_size: int, start: int, stop: int | None) -> DataLoader:
        data = self.cfg.data
        consumed = {name for _, name, _ in self.recorder.records}
        self.batches = LiveBatches(
            Path(data.data_dir),
            batch_size,
            self.unit,
            start,
            stop,
            consumed,
            data.live,
            data.load_size,
            data.on_bad_image == "skip",
        )
        return DataLoader(self.batches, batch_size=None, num_workers=0)

    def requested(self, batch: int) -> int:
        return len(self.batches.files_of.get(self.batches.start + batch, []))


STREAM_SOURCES: dict[str, type[StreamSource]] = {"webdataset": ShardSource, "live_folder": LiveSource}


def stream_source(setup, rank: int, world: int) -> StreamSource:
    return STREAM_SOURCES.get(setup.cfg.data.dataset, StreamSource)(setup, rank, world)


def stream_batches(num_samples: int | None, batch_size: int) -> int | None:
    return None if num_samples is None else math.ceil(num_samples / batch_size)
