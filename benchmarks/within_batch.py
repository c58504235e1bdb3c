"""Does the model learn a stream batch within its N local steps, and does RALS's choice follow? (issue 13)

For each setting: an online RALS run from a task-1 checkpoint at the CPU scale of docs/table1_cpu.md (width 0.25,
the paper's projectors, 200 images per class, memory 4,000, N = 10), over the first ``--batches`` stream batches
with ``online.probe_stream_loss`` on, and a selection rule that records every unit's RALS score. Measured over the
stream batches from the third on (the memory holds a full memory batch by then):

- share: the stream's share among the selected at local steps 1..N-1 (1/3 is a random choice of 256 of 128 + 256);
- probe drop: how much the stream batch's loss on fixed views falls from local step 0 to step N-1, in percent;
- stream-memory gap: mean RALS score of stream units minus memory units, in units of the scores' standard deviation
  (RALS trains on high scores, so a negative gap is what makes the stream's share fall);
- score persistence: Pearson correlation, over the stream units, of their scores at consecutive local steps (fresh
  views each step). A unit's score that is mostly augmentation noise correlates near 0 from one step to the next.

python benchmarks/within_batch.py --method barlow --task1 PATH [--settings NAME ...] [--batches 16]
  (without --task1, trains one for --task1-epochs; results append to docs/within_batch.csv and print a table)
"""

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.compare.cli import scale_preset  # noqa: E402
from solo_ossl.methods import METHODS, config_stem  # noqa: E402
from solo_ossl.online.selection import RalsSelection  # noqa: E402
from solo_ossl.run.pretrain import run_pretrain  # noqa: E402

SHARED_NPZ = ROOT.parent / "shared" / "datasets" / "cifar100" / "cifar100_uint8.npz"
# name -> (method, overrides); lr is SLCLRS's max lr (the configs: BT 0.05, SimCLR 1.0, as CaSSLe's recipes scale).
SETTINGS = {
    "bt_lr0.05_g16": ("barlow", ["++online.max_lr=0.05"]),
    "bt_lr0.5_g16": ("barlow", ["++online.max_lr=0.5"]),
    "bt_lr1.5_g16": ("barlow", ["++online.max_lr=1.5"]),
    "bt_lr0.5_g4": ("barlow", ["++online.max_lr=0.5", "++method.group_size=4"]),
    "bt_lr0.5_g64": ("barlow", ["++online.max_lr=0.5", "++method.group_size=64"]),
    "bt_lr0.05_g16_n20": ("barlow", ["++online.max_lr=0.05", "++online.steps_per_batch=20"]),  # Fig. 3(b)'s N
    "simclr_lr1.0": ("simclr", ["++online.max_lr=1.0"]),
    "simclr_lr4.0": ("simclr", ["++online.max_lr=4.0"]),
}
SETTING_METHODS = {method for method, _ in SETTINGS.values()}
COLUMNS = [
    "setting",
    "method",
    "max_lr",
    "group_size",
    "steps",
    "batches",
    "share_step0",
    "share_steps1_on",
    "share_last_step",
    "probe_drop_pct",
    "gap_sd",
    "persistence",
    "seconds",
    "date",
]


class ScoreRecordingRals(RalsSelection):
    """RALS that keeps each scoring step's scores (current - anchor) per unit, stream units first."""

    def __init__(self) -> None:
        super().__init__()
        self.scores: dict[int, list[torch.Tensor]] = {}

    def unit_losses(self, method, v1, v2):
        current, anchor = super().unit_losses(method, v1, v2)
        self.scores.setdefault(method.regime.learner.position, []).append((current.float() - anchor.float()).cpu())
        return current, anchor


class InjectRule(Callback):
    def __init__(self, rule) -> None:
        self.rule = rule

    def on_train_start(self, trainer, pl_module) -> None:
        pl_module.regime.learner.selection = self.rule


def task1_checkpoint(method: str, epochs: int, out: Path, data: list[str]) -> Path:
    preset, _ = scale_preset("cpu")
    cfg = load_config(
        [
            "--config-name",
            f"pretrain/cifar100/{config_stem(method)}",
            *preset,
            *data,
            "++data.tasks=[1]",
            f"++max_epochs={epochs}",
            "++val_every_n_epochs=0",
            "++progress_bar=false",
            f"++output_dir={out}",
            f"++name={method}-task1",
        ]
    )
    final = out / f"{method}-task1" / "final.ckpt"
    return final if final.is_file() else run_pretrain(cfg)


def summarize(steps_csv: Path, rule: ScoreRecordingRals, stream_units: int, first: int = 2) -> dict:
    rows = [r for r in csv.DictReader(steps_csv.open()) if int(r["stream_batch"]) >= first]
    by_step: dict[int, list[dict]] = {}
    for r in rows:
        by_step.setdefault(int(r["step"]), []).append(r)
    last = max(by_step)
    share = {s: statistics.mean(float(r["stream_selected_ratio"]) for r in rs) for s, rs in by_step.items()}
    drops = []
    for batch in {int(r["stream_batch"]) for r in rows}:
        probe = {int(r["step"]): float(r["stream_probe_loss"]) for r in rows if int(r["stream_batch"]) == batch}
        drops.append(100 * (probe[0] - probe[last]) / abs(probe[0]))
    gaps, persistence = [], []
    for position, per_step in rule.scores.items():
        if position < first:
            continue
        for scores in per_step:
            gaps.append(float((scores[:stream_units].mean() - scores[stream_units:].mean()) / scores.std()))
        for a, b in zip(per_step, per_step[1:], strict=False):
            if stream_units > 2:
                persistence.append(float(torch.corrcoef(torch.stack([a[:stream_units], b[:stream_units]]))[0, 1]))
    return {
        "batches": len(drops),
        "share_step0": round(share[0], 3),
        "share_steps1_on": round(statistics.mean(share[s] for s in share if s > 0), 3),
        "share_last_step": round(share[last], 3),
        "probe_drop_pct": round(statistics.mean(drops), 2),
        "gap_sd": round(statistics.mean(gaps), 3),
        "persistence": round(statistics.mean(persistence), 3) if persistence else "",
    }


def run_setting(name: str, task1: Path, batches: int, data: list[str], out: Path) -> dict:
    method, overrides = SETTINGS[name]
    preset, _ = scale_preset("cpu")
    cfg = load_config(
        [
            "--config-name",
            f"online/cifar100/{config_stem(method)}_rals",
            *preset,
            *data,
            *overrides,
            f"++pretrained_ckpt={task1}",
            f"++online.max_stream_batches={batches}",
            "++online.probe_stream_loss=true",
            "++online.checkpoint_every=1000",
            "++eval.every=0",
            "++progress_bar=false",
            f"++output_dir={out}",
            f"++name={name}",
        ]
    )
    rule = ScoreRecordingRals()
    start = time.perf_counter()
    run_pretrain(cfg, [InjectRule(rule)])
    seconds = time.perf_counter() - start
    group = METHODS[cfg.method.name].scoring_group_size(cfg.method)
    summary = summarize(out / name / "online_steps.csv", rule, cfg.online.stream_batch_size // group)
    return {
        "setting": name,
        "method": method,
        "max_lr": cfg.online.max_lr,
        "group_size": group,
        "steps": cfg.online.steps_per_batch,
        **summary,
        "seconds": round(seconds),
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=sorted(SETTING_METHODS), required=True)
    parser.add_argument("--task1", type=Path, help="task-1 checkpoint of --method at the CPU scale")
    parser.add_argument("--task1-epochs", type=int, default=30)
    parser.add_argument("--settings", nargs="+", help="default: every setting of --method")
    parser.add_argument("--batches", type=int, default=16, help="stream batches per setting")
    parser.add_argument("--npz", type=Path, default=SHARED_NPZ)
    parser.add_argument("--work", type=Path, default=ROOT / "trained_models" / "within_batch")
    parser.add_argument("--csv", type=Path, default=ROOT / "docs" / "within_batch.csv")
    args = parser.parse_args()
    if not args.npz.is_file():
        sys.exit(f"error: {args.npz} not found: pass --npz with CIFAR-100 as x_train/y_train/x_test/y_test arrays")
    data = ["++data.dataset=npz", f"++data.data_dir={args.npz}"]
    names = args.settings or [n for n, (m, _) in SETTINGS.items() if m == args.method]
    args.work.mkdir(parents=True, exist_ok=True)
    task1 = args.task1 or task1_checkpoint(args.method, args.task1_epochs, args.work, data)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for name in names:
            row = run_setting(name, task1, args.batches, data, Path(tmp))
            new = not args.csv.exists()
            with args.csv.open("a", newline="") as f:
                writer = csv.DictWriter(f, COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            print(" | ".join(str(row[c]) for c in COLUMNS), flush=True)


if __name__ == "__main__":
    main()
