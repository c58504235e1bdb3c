"""A live stream (the paper's Fig. 1): image files landing in a folder, formed into stream batches as they arrive.

The folder is listed by polling (local disks and network mounts alike; no inotify needed). New files queue in
arrival order (modification time, then name); a stream batch is taken from the front of the queue as soon as it is
full. While fewer files wait, the trainer waits. The iterator records which files each stream batch took, so that
the driver can record the files of the batches actually trained (``LiveFiles``), and a restart skips exactly those.
"""

import collections
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import IterableDataset

from solo_ossl.data.images import IMAGE_EXTENSIONS, decode_or_skip, stack_images
from solo_ossl.utils.errors import SoloOsslError


def list_images(root: Path) -> list[tuple[int, str]]:
    """(modification time in ns, path relative to ``root``) of every image file under ``root``, at any depth; names
    starting with '.' (files being written) are left out."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(directory) / name
            try:
                found.append((path.stat().st_mtime_ns, str(path.relative_to(root))))
            except FileNotFoundError:  # removed between the listing and the stat
                continue
    return found


@dataclass
class LiveFolder:
    """``data.dataset=live_folder``'s training data: the watched folder (read by ``LiveBatches`` when the stream
    starts; it may be empty or not exist yet at start-up, as long as it exists by then)."""

    root: Path
    targets: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))


@dataclass
class LiveQueue:
    """The files seen and waiting, with the queue's policy (``data.live``): ``max_pending`` (0: no bound) and
    ``when_behind`` (wait: files beyond the bound stay on disk until the queue drains; drop_oldest: the oldest
    waiting files are dropped)."""

    max_pending: int = 0
    when_behind: str = "wait"
    known: set[str] = field(default_factory=set)  # consumed, dropped, waiting or left on disk
    waiting: collections.deque = field(default_factory=collections.deque)
    on_disk: collections.deque = field(default_factory=collections.deque)  # beyond the bound (policy wait)
    dropped: list[str] = field(default_factory=list)

    def arrive(self, listing: list[tuple[int, str]]) -> int:
        """Queue the files of ``listing`` not seen before, in arrival order; the number of new files."""
        new = sorted((t, name) for t, name in listing if name not in self.known)
        for _, name in new:
            self.known.add(name)
            self.on_disk.append(name)
        self.admit()
        return len(new)

    def admit(self) -> None:
        """Move files from disk into the queue as the policy allows."""
        bound = self.max_pending or None
        if self.when_behind == "drop_oldest":
            self.waiting.extend(self.on_disk)
            self.on_disk.clear()
            while bound is not None and len(self.waiting) > bound:
                self.dropped.append(self.waiting.popleft())
            return
        while self.on_disk and (bound is None or len(self.waiting) < bound):
            self.waiting.append(self.on_disk.popleft())

    def take(self, count: int) -> list[str]:
        taken = [self.waiting.popleft() for _ in range(min(count, len(self.waiting)))]
        self.admit()
        return taken


class LiveBatches(IterableDataset):
    """Stream batches of files arriving in ``root``: ``(sequence numbers, uint8 images, targets -1)``, read in the
    main process. Stream batch ``start + i`` is the i-th yielded; ``files_of[batch]`` lists the files it took (the
    unreadable ones included, skipped with ``skip_bad``). Stops, with ``stop_reason`` set, when ``stop`` batches are
    done (None: no limit) or when no file has arrived for ``idle_timeout_s`` and the files waiting are trained."""

    def __init__(
        self,
        root: Path,
        batch_size: int,
        unit: int,
        start: int,
        stop: int | None,
        consumed: set[str],
        live_cfg,
        load_size: int,
        skip_bad: bool,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not root.is_dir():
            raise SoloOsslError(f"the live folder {root} does not exist: create it, or set data.data_dir")
        self.root, self.batch_size, self.unit, self.start, self.stop = root, batch_size, unit, start, stop
        self.cfg, self.load_size, self.skip_bad = live_cfg, load_size, skip_bad
        self.queue = LiveQueue(live_cfg.max_pending, str(live_cfg.when_behind), known=set(consumed))
        self.clock, self.sleep = clock, sleep
        self.files_of: dict[int, list[str]] = {}
        self.stop_reason = ""

    def next_files(self) -> list[str] | None:
        """The next stream batch's files, waiting for them; None when the stream stops."""
        last_arrival = self.clock()
        while True:
            if self.queue.arrive(list_images(self.root)):
                last_arrival = self.clock()
            if len(self.queue.waiting) >= self.batch_size:
                return self.queue.take(self.batch_size)
            if self.clock() - last_arrival >= self.cfg.idle_timeout_s:
                whole = len(self.queue.waiting) // self.unit * self.unit
                if whole:
                    return self.queue.take(whole)
                self.stop_reason = f"no new file for {self.cfg.idle_timeout_s:g} s (data.live.idle_timeout_s)"
                return None
            self.sleep(self.cfg.poll_s)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        batch = self.start
        while self.stop is None or batch < self.stop:
            files = self.next_files()
            if files is None:
                return
            self.files_of[batch] = files
            images, kept = [], []
            for i, name in enumerate(files):
                image = decode_or_skip(self.root / name, self.load_size, str(self.root / name), self.skip_bad)
                if image is not None:
                    images.append(image)
                    kept.append(i)
            stacked = stack_images(images, self.load_size)
            yield torch.tensor(kept, dtype=torch.long), stacked, torch.full((len(kept),), -1, dtype=torch.long)
            batch += 1
        self.stop_reason = f"online.max_stream_batches={self.stop} stream batches done"
