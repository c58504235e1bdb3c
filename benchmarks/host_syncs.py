"""Host reads (GPU syncs) per local step of the online step, counted on CPU (not a test).

    python benchmarks/host_syncs.py [--selection rals] [--batches 4] [--steps 10]

Runs online Barlow Twins on the embedded data (ResNet18 width 0.125, fp32) and counts, inside the online training
algorithm's stream batch (``train_stream_batch``, without Lightning), every read of a tensor's value into Python (``solo_ossl.utils.host_reads``), by the package that made it.
On a GPU each read of a device tensor is a sync. The first two stream batches are not counted (the memory is still
filling, and selection trains on all candidates until there are more than k).
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.online.algorithm import train_stream_batch  # noqa: E402
from solo_ossl.run.bare import bare_online_run  # noqa: E402
from solo_ossl.utils.host_reads import count_host_reads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selection", default="rals", choices=["none", "random", "rals"])
    parser.add_argument("--batches", type=int, default=4, help="stream batches to run (the first 2 are not counted)")
    parser.add_argument("--steps", type=int, default=10, help="local steps per stream batch (N)")
    args = parser.parse_args()
    cfg = load_config(
        [
            "--config-name",
            "online/embedded/barlow_rals",
            "++backbone.width=0.125",
            "++precision=32",
            "++online.skip_first_task=false",
            f"++online.selection={args.selection}",
            f"++online.steps_per_batch={args.steps}",
        ]
    )
    run = bare_online_run(cfg)
    total: Counter = Counter()
    counted_batches = 0
    for position, batch in zip(range(args.batches), run.batches(), strict=False):
        with count_host_reads() as counts:
            log, values = train_stream_batch(run.learner, run.model, run.optimizer, batch)
        if position >= 2:
            counted_batches += 1
            total.update(counts)
    local_steps = counted_batches * args.steps
    print(f"selection={args.selection}, N={args.steps}, {counted_batches} stream batches counted")
    print("| origin | read | per local step |")
    print("|---|---|---|")
    for (origin, read), n in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"| {origin} | {read} | {n / local_steps:.2f} |")
    print(f"| all | all | {sum(total.values()) / local_steps:.2f} |")


if __name__ == "__main__":
    main()
