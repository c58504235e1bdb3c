"""Images/s of one forward+backward of ResNet18 (CIFAR stem, 32 px, batch 256) on this CPU:
fp32 vs bf16 autocast, each with and without channels_last, at full width and width 0.25.

python benchmarks/backbone_step.py [--out benchmarks/RESULTS.md]
Run with MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647 (the bash files set them).
"""

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solo_ossl.backbones import resnet18  # noqa: E402
from solo_ossl.utils.device import cpu_name  # noqa: E402


def images_per_second(width: float, bf16: bool, channels_last: bool, batch: int = 256, repeats: int = 3) -> float:
    torch.manual_seed(0)
    model = resnet18(cifar=True, width=width)
    x = torch.randn(batch, 3, 32, 32)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(repeats + 1):  # the first call warms up oneDNN kernels
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(x).float().pow(2).mean()
        loss.backward()
        times.append(time.perf_counter() - start)
    return batch / min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="benchmarks/RESULTS.md")
    args = parser.parse_args()
    cpu = cpu_name()
    flags = open("/proc/cpuinfo").read()
    malloc = os.environ.get("MALLOC_MMAP_THRESHOLD_") == "2147483647"
    lines = [
        f"\n## ResNet18 forward+backward, batch 256, 32 px — {datetime.date.today()}",
        f"Machine: {cpu}, {platform.machine()}, {torch.get_num_threads()} threads, avx512_bf16: "
        f"{'avx512_bf16' in flags}, amx_bf16: {'amx_bf16' in flags}, glibc malloc settings: {malloc}. "
        "Command: `python benchmarks/backbone_step.py`.",
        "",
        "| width | fp32 | fp32 + channels_last | bf16 | bf16 + channels_last | bf16+cl / fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for width in (1.0, 0.25):
        r = {(b, c): images_per_second(width, b, c) for b in (False, True) for c in (False, True)}
        lines.append(
            f"| {width} | {r[(False, False)]:.1f} | {r[(False, True)]:.1f} | {r[(True, False)]:.1f} | "
            f"{r[(True, True)]:.1f} | {r[(True, True)] / r[(False, False)]:.2f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + " (img/s)\n"
    with open(args.out, "a") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
