"""Within-stream-batch curves of an online run (the paper's Fig. 3b): loss per local step, and the share of stream
samples among those selected, averaged over the last 100 stream batches and for the last one."""

import csv
from collections import defaultdict
from pathlib import Path


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def within_batch_curves(steps_csv: Path, recent: int = 100) -> dict[str, list[float]]:
    """Per local step n: ``loss`` (trained-on samples), ``stream_unit_loss`` (scoring pass, before the step),
    ``probe`` (stream batch on fixed views, after the step), ``share_recent`` (stream share of the selected, mean
    over the last ``recent`` stream batches) and ``share_last`` (the last stream batch)."""
    with Path(steps_csv).open() as f:
        rows = list(csv.DictReader(f))
    batches = sorted({int(r["stream_batch"]) for r in rows})
    last_batches = set(batches[-recent:])
    by_step = defaultdict(lambda: defaultdict(list))
    for r in rows:
        b, s = int(r["stream_batch"]), int(r["step"])
        by_step[s]["loss"].append(float(r["loss"]))
        for column, key in (("stream_probe_loss", "probe"), ("stream_unit_loss", "stream_unit_loss")):
            if r.get(column):
                by_step[s][key].append(float(r[column]))
        if b in last_batches:
            by_step[s]["share_recent"].append(float(r["stream_selected_ratio"]))
        if b == batches[-1]:
            by_step[s]["share_last"].append(float(r["stream_selected_ratio"]))
    steps = sorted(by_step)
    keys = ("loss", "stream_unit_loss", "probe", "share_recent", "share_last")
    curves = {key: [_mean(by_step[s][key]) for s in steps] for key in keys}
    return {"step": steps, "batches_recent": len(last_batches), **curves}


def plot_online_curves(run_dir: Path, out: Path | None = None) -> Path:
    """``online_curves.png`` in ``run_dir`` (from its ``online_steps.csv``): loss and selection share per step."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = within_batch_curves(Path(run_dir) / "online_steps.csv")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if not all(math.isnan(v) for v in c["probe"]):
        a.plot(c["step"], c["probe"], marker="o", label="stream batch, fixed views, after step n")
        a.set(ylabel="SSL loss (mean over stream batches)")
    else:
        a.plot(c["step"], c["loss"], marker="o", label="trained-on samples (fresh views)")
    a.set(xlabel="local step n", title="Loss within a stream batch")
    a.legend(fontsize=8)
    b.plot(c["step"], c["share_recent"], marker="o", label=f"mean over last {c['batches_recent']} batches")
    b.plot(c["step"], c["share_last"], marker="x", label="last batch")
    b.set(xlabel="local step n", ylabel="stream share of selected", title="Selection ratio (Fig. 3b)", ylim=(0, 1.05))
    b.legend()
    fig.tight_layout()
    out = Path(out) if out else Path(run_dir) / "online_curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
