"""Barlow Twins' per-group loss (RALS's scoring units) through Gram matrices against the D x D cross-correlation.

python benchmarks/barlow_groups.py [--repeats 5]   (appends to benchmarks/RESULTS.md)

The scoring pass computes it twice per local step (model and anchor) over 384 candidates with the paper's
2048-d projector. The D x D form holds a [groups, D, D] tensor: 24 x 16 MB at groups of 16, 96 x 16 MB at groups of 4.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.losses import barlow_loss_per_group  # noqa: E402
from solo_ossl.losses.barlow import _barlow_from_correlation, _standardize  # noqa: E402
from solo_ossl.losses.groups import split_groups  # noqa: E402


def through_correlation(z1: torch.Tensor, z2: torch.Tensor, group_size: int) -> torch.Tensor:
    """The former per-group loss: each group's D x D cross-correlation matrix."""
    g1 = _standardize(split_groups(z1, group_size, "Barlow Twins"))
    g2 = _standardize(split_groups(z2, group_size, "Barlow Twins"))
    return _barlow_from_correlation(g1.transpose(1, 2) @ g2 / group_size, 0.005, 0.1)


def seconds(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args()
    torch.manual_seed(0)
    z1, z2 = torch.randn(384, 2048), torch.randn(384, 2048)
    rows = []
    for group in (16, 64):  # groups of 4 need 96 x 16 MB per D x D tensor: not run in the old form
        old = seconds(lambda g=group: through_correlation(z1, z2, g), args.repeats)
        new = seconds(lambda g=group: barlow_loss_per_group(z1, z2, g, 0.005, 0.1), args.repeats)
        diff = (through_correlation(z1, z2, group) - barlow_loss_per_group(z1, z2, group, 0.005, 0.1)).abs().max()
        rows.append(f"| {group} | {1000 * old:.1f} | {1000 * new:.1f} | {old / new:.1f}x | {diff:.1e} |")
    new4 = seconds(lambda: barlow_loss_per_group(z1, z2, 4, 0.005, 0.1), args.repeats)
    rows.append(f"| 4 | (not run: 1.5 GB per tensor) | {1000 * new4:.1f} | | |")
    report = "\n".join(
        [
            "",
            f"## Barlow Twins per-group loss, 384 x 2048, {time.strftime('%Y-%m-%d')}",
            "",
            f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
            f"{torch.__version__}. Command: `python benchmarks/barlow_groups.py --repeats {args.repeats}`.",
            "",
            "| group | D x D form (ms) | Gram form (ms) | ratio | max abs difference |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(report)
    with open(args.out, "a") as f:
        f.write(report)


if __name__ == "__main__":
    main()
