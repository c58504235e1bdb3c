"""Within-stream-batch curves of an online run (paper Fig. 3b): loss per local step, and the share of stream
samples among those RALS selected, averaged over the last 100 stream batches and for the last one.

python benchmarks/plot_online.py RUN_DIR [--out FILE.png]   (RUN_DIR holds online_steps.csv)
"""

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with (args.run_dir / "online_steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    batches = sorted({int(r["stream_batch"]) for r in rows})
    recent = set(batches[-100:])
    loss, ratio, last, stream_loss = defaultdict(list), defaultdict(list), {}, defaultdict(list)
    probe = defaultdict(list)
    for r in rows:
        b, s = int(r["stream_batch"]), int(r["step"])
        loss[s].append(float(r["loss"]))
        if r.get("stream_probe_loss"):
            probe[s].append(float(r["stream_probe_loss"]))
        if r.get("stream_unit_loss"):
            stream_loss[s].append(float(r["stream_unit_loss"]))
        if b in recent:
            ratio[s].append(float(r["stream_selected_ratio"]))
        if b == batches[-1]:
            last[s] = float(r["stream_selected_ratio"])
    steps = sorted(loss)
    mean_loss = [sum(loss[s]) / len(loss[s]) for s in steps]
    mean_ratio = [sum(ratio[s]) / len(ratio[s]) for s in steps]
    mean_probe = [sum(probe[s]) / len(probe[s]) if probe[s] else float("nan") for s in steps]
    mean_stream = [sum(stream_loss[s]) / len(stream_loss[s]) if stream_loss[s] else float("nan") for s in steps]
    print(
        "local step | loss of trained-on | stream unit loss before step | stream probe loss after step"
        " | stream share selected (mean last 100 | last batch)"
    )
    for s, lo, sl, pr, ra in zip(steps, mean_loss, mean_stream, mean_probe, mean_ratio, strict=True):
        print(f"{s:10d} | {lo:18.3f} | {sl:28.3f} | {pr:28.3f} | {ra:.3f} | {last.get(s, float('nan')):.3f}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if probe:
        a.plot(steps, mean_probe, marker="o", label="stream batch, fixed views, after step n")
        a.set(ylabel="SSL loss (mean over stream batches)")
    else:
        a.plot(steps, mean_loss, marker="o", label="trained-on samples (fresh views)")
    a.set(xlabel="local step n", title="Loss within a stream batch")
    a.legend(fontsize=8)
    b.plot(steps, mean_ratio, marker="o", label=f"mean over last {len(recent)} batches")
    b.plot(sorted(last), [last[s] for s in sorted(last)], marker="x", label="last batch")
    b.set(xlabel="local step n", ylabel="stream share of selected", title="RALS selection ratio", ylim=(0, 1.05))
    b.legend()
    fig.tight_layout()
    out = args.out or args.run_dir / "online_curves.png"
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
