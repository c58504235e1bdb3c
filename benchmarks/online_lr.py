"""The online max lr of a method the paper did not run, chosen by measurement: on the embedded data (20 CIFAR-100
classes), a task-1 checkpoint per method, then Ours without RALS (N = 10) at each candidate max lr, and the kNN
monitor's top-1 at the stream's end (the fixed subsets of ``eval``).

    python benchmarks/online_lr.py byol=0.1,1.0 simsiam=0.05,0.5 mocov3=0.1,1.0 [--last-task 3] [--out benchmarks/online_lr.md]

One run at a time; each method's task-1 run is shared by its lr runs (``trained_models/online_lr``). The table is
appended to ``--out`` with the machine, the command and the date.
"""

import argparse
import csv
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.run.pretrain import run_pretrain  # noqa: E402
from solo_ossl.utils.device import machine_name  # noqa: E402


def last_knn(run_dir: Path) -> float:
    (path,) = run_dir.glob("logs/version_*/metrics.csv")
    with path.open() as f:
        values = [float(r["knn_top1"]) for r in csv.DictReader(f) if r.get("knn_top1")]
    return values[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", nargs="+", help="method=lr,lr,...")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "online_lr.md"))
    parser.add_argument("--output-dir", default="trained_models/online_lr")
    parser.add_argument("--last-task", type=int, default=3, help="stream tasks 2..this one (data.last_task)")
    args = parser.parse_args()
    started, rows = time.perf_counter(), []
    for entry in args.grid:
        method, values = entry.split("=")
        common = ["++progress_bar=false", f"++output_dir={args.output_dir}"]
        task1 = run_pretrain(load_config(["--config-name", f"pretrain/embedded/{method}", *common]))
        for lr in values.split(","):
            name = f"{method}-online-lr{lr}"
            cfg = load_config(
                [
                    "--config-name",
                    f"online/embedded/{method}",
                    *common,
                    f"++pretrained_ckpt={task1}",
                    f"++online.max_lr={lr}",
                    f"++data.last_task={args.last_task}",
                    f"++name={name}",
                ]
            )
            run_start = time.perf_counter()
            run_pretrain(cfg)
            rows.append((method, float(lr), last_knn(Path(args.output_dir) / name), time.perf_counter() - run_start))
            print(f"[online_lr] {method} max_lr {lr}: kNN top-1 {rows[-1][2]:.2f}%", flush=True)
    minutes = (time.perf_counter() - started) / 60
    lines = [
        f"\n## Online max lr of the methods beyond the paper — {datetime.date.today()}",
        f"Machine: {machine_name()}. Command: `python benchmarks/online_lr.py {' '.join(args.grid)}` ({minutes:.0f} min). "
        "Embedded data, each method's embedded task-1 config (40 epochs), then its online/embedded config (Ours "
        f"without RALS, N = 10, memory 500) at each max lr over tasks 2-{args.last_task}; kNN top-1 of the monitor "
        "(k 20, T 0.07, the embedded test set) at the stream's end. One seed: a choice, not a result.",
        "",
        "| method | max lr | kNN top-1 (%) | run s |",
        "|---|---|---|---|",
        *(f"| {m} | {lr} | {knn:.2f} | {s:.0f} |" for m, lr, knn, s in rows),
        "",
    ]
    with open(args.out, "a") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
