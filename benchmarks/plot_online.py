"""Within-stream-batch curves of an online run (paper Fig. 3b): loss per local step, and the share of stream
samples among those selected, averaged over the last 100 stream batches and for the last one.

python benchmarks/plot_online.py RUN_DIR [--out FILE.png]   (RUN_DIR holds online_steps.csv)

Online runs write the same plot to RUN_DIR/online_curves.png themselves; this prints the table too.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solo_ossl.eval.plots import plot_online_curves, within_batch_curves  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    c = within_batch_curves(args.run_dir / "online_steps.csv")
    print(
        "local step | loss of trained-on | stream unit loss before step | stream probe loss after step"
        " | stream share selected (mean last 100 | last batch)"
    )
    for i, s in enumerate(c["step"]):
        print(
            f"{s:10d} | {c['loss'][i]:18.3f} | {c['stream_unit_loss'][i]:28.3f} | {c['probe'][i]:28.3f} | "
            f"{c['share_recent'][i]:.3f} | {c['share_last'][i]:.3f}"
        )
    print(f"plot: {plot_online_curves(args.run_dir, args.out)}")


if __name__ == "__main__":
    main()
