"""kornia's RandomResizedCrop: per-sample ``slice`` mode against the batched ``resample`` mode (not a test).

    python benchmarks/crop_modes.py [--repeats 20] [--device cpu]

Crops 384 real CIFAR-100 images (a RALS step's candidates; the embedded subset) to 32x32 with the same drawn boxes
in both modes, alternating the modes, and reports the time per call, the kernel launches (profiler events of
``aten::`` ops) and the largest pixel difference.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import kornia.augmentation as K  # noqa: E402

from solo_ossl.data.datasets import EMBEDDED_PATH  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with np.load(EMBEDDED_PATH) as f:
        images = torch.from_numpy(f["x_train"][:384])
    x = (images.permute(0, 3, 1, 2) if images.shape[-1] == 3 else images).float().div(255).to(args.device)
    crops = {mode: K.RandomResizedCrop((32, 32), (0.08, 1.0), cropping_mode=mode) for mode in ("slice", "resample")}
    params = crops["resample"].forward_parameters(x.shape)
    outputs = {mode: crop(x, params=params) for mode, crop in crops.items()}
    times: dict[str, list[float]] = {mode: [] for mode in crops}
    for _ in range(args.repeats):
        for mode, crop in crops.items():
            start = time.perf_counter()
            crop(x, params=crop.forward_parameters(x.shape))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[mode].append(time.perf_counter() - start)
    ops = {}
    for mode, crop in crops.items():
        with torch.profiler.profile() as prof:
            crop(x, params=params)
        ops[mode] = sum(1 for e in prof.events() if e.name.startswith("aten::"))
    diff = (outputs["slice"] - outputs["resample"]).abs().max().item()
    print(f"device {args.device}, 384 images, {args.repeats} alternating repeats")
    print("| mode | ms per call (median) | aten ops per call |")
    print("|---|---|---|")
    for mode in crops:
        print(f"| {mode} | {1000 * statistics.median(times[mode]):.1f} | {ops[mode]} |")
    ratio = statistics.median(times["slice"]) / statistics.median(times["resample"])
    print(f"slice / resample time: {ratio:.2f}; largest pixel difference on the same boxes: {diff:.1e}")


if __name__ == "__main__":
    main()
