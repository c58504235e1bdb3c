"""Step time of the online step on the embedded real images: RALS vs no RALS, fp32 vs bf16 + channels_last.

python benchmarks/online_step.py [--width 0.25] [--steps 5] [--out benchmarks/RESULTS.md]

Each configuration streams the same tasks (2-5, 64 images per class) with N local steps per stream batch; the
first two stream batches are skipped (memory still filling, RALS then trains on every candidate). Paper settings:
no RALS = stream 128 + memory 128, trains on 256; RALS = stream 128 + memory 256, scores 384 with current model
and anchor (no grad), trains on 256. Theory for the ratio: (2x384x2 forward + 2x256 fwd+bwd) / (2x256 fwd+bwd)
~ 2.0 when a backward costs twice a forward.
"""

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solo_ossl.args import load_config  # noqa: E402
from solo_ossl.pretrain import run_pretrain  # noqa: E402
from solo_ossl.utils.precision import cpu_has_native_bf16  # noqa: E402


class BatchTimer(Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds.append(time.perf_counter() - self._t)


def measure(width: float, steps: int, rals: bool, precision: str, out_dir: str) -> float:
    name = "online/embedded/barlow_rals" if rals else "online/embedded/barlow"
    cfg = load_config(
        [
            "--config-name",
            name,
            f"++backbone.width={width}",
            f"++online.steps_per_batch={steps}",
            "++data.train_per_class=64",
            f"++precision={precision}",
            f"++output_dir={out_dir}",
            "++progress_bar=false",
            "++online.checkpoint_every=1000",
            "++online.skip_first_task=true",
        ]
    )
    timer = BatchTimer()
    run_pretrain(cfg, [timer])
    kept = timer.seconds[2:]
    return sum(kept) / len(kept) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/RESULTS.md")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("32", "bf16-mixed"):
            for rals in (False, True):
                results[(precision, rals)] = measure(args.width, args.steps, rals, precision, tmp)
                print(f"precision={precision} rals={rals}: {results[(precision, rals)]:.3f} s/step", flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [
        f"\n## Online step time — {datetime.date.today()}",
        f"Machine: {cpu}, {platform.machine()}, native bf16: {cpu_has_native_bf16()}. Command: `python benchmarks/online_step.py "
        f"--width {args.width} --steps {args.steps}` (ResNet18 width {args.width}, 32 px, Barlow Twins, embedded data).",
        "",
        "| precision | no RALS s/step (trains 256) | RALS s/step (scores 384, trains 256) | RALS / no RALS |",
        "|---|---|---|---|",
    ]
    for precision in ("32", "bf16-mixed"):
        a, b = results[(precision, False)], results[(precision, True)]
        lines.append(f"| {precision} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
    fp, bf = results[("32", False)], results[("bf16-mixed", False)]
    lines.append(f"\nfp32 / bf16-mixed step time without RALS: {fp / bf:.2f} (both channels_last).")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
