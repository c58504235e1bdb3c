"""The augmentation's CPU proxy for its GPU cost (issue 42): aten ops dispatched per call of the online augmentation
(two views, solo-learn's CIFAR recipe) at 128 and 384 images, and CPU milliseconds per call (not a test).

    python benchmarks/augment_ops.py [--repeats 20] [--config online/embedded/barlow_rals]

At 32 px the GPU step is bound by kernel launches, not pixels: every aten op the augmentation dispatches is a launch
or host work there, so the op count per call, and whether it grows with the batch, is what a GPU pays for it.
"""

import argparse
import statistics
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from solo_ossl.args import load_config
from solo_ossl.data.augment import MultiViewAugment
from solo_ossl.data.datasets import CIFAR100_STATS


class CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--config", default="online/embedded/barlow_rals")
    args = parser.parse_args()
    cfg = load_config(["--config-name", args.config])
    augment = MultiViewAugment(cfg.data.augmentations, cfg.data.crop_size, *CIFAR100_STATS)
    torch.manual_seed(0)
    print("| images | aten ops per call | ms per call (median) | most frequent ops |")
    print("|---|---|---|---|")
    for n in (128, 384):
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
        augment(images)  # warm-up
        with CountOps() as counter:
            augment(images)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            augment(images)
            times.append(1000 * (time.perf_counter() - start))
        top = ", ".join(f"{name} {count}" for name, count in counter.ops.most_common(4))
        print(f"| {n} | {sum(counter.ops.values())} | {statistics.median(times):.1f} | {top} |")


if __name__ == "__main__":
    main()
