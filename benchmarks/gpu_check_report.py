"""The GPU check's results file: ``gpu_check.json`` (every step's command, exit code, seconds and result) and
``gpu_check.md`` (the same as tables), from the steps that ``benchmarks/gpu_check.sh`` recorded. Exits 1 if a step
failed.

    python benchmarks/gpu_check_report.py OUTDIR/steps.jsonl OUTDIR [--dry-run]
"""

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

GOAL_S = 600  # the full CIFAR-100 BT+RALS online run on one H100/H200
# Issue 42's goals for the online step (bf16, ResNet18 width 1, 32 px): trained images/s and the data share.
GOAL_TRAINED_PER_S = {"no_rals": 6000, "rals": 4500}
GOAL_DATA_SHARE = 0.15


def step_row(name: str, r: dict) -> str:
    return (
        f"| {name} | {r['s_per_step']:.4f} | {r['candidates_per_s']:.0f} | {r['trained_per_s']:.0f} | "
        f"{r['data_share']:.1%} |"
    )


def pytest_summary(tail: list[str]) -> str:
    line = next((t for t in reversed(tail) if re.search(r"\b(passed|failed|skipped|deselected|error)", t)), "")
    return line.strip("= ")


def markdown(report: dict) -> str:
    steps = {s["step"]: s for s in report["steps"]}
    env = steps["env"]["result"] or {}
    lines = [
        f"# GPU check — {report['date']}{' (dry run on the CPU, tiny sizes)' if report['dry_run'] else ''}",
        "",
        f"Device: {env.get('device', '?')}; CUDA {env.get('cuda')}; host {env.get('host', '?')}; Python "
        f"{env.get('python', '?')}; precision auto = {env.get('precision_auto', '?')}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()) + ".",
        "",
        "| step | command | exit | seconds |",
        "|---|---|---|---|",
        *(f"| {s['step']} | `{s['command']}` | {s['rc']} | {s['seconds']} |" for s in report["steps"]),
        "",
        f"GPU tests: {pytest_summary(steps['gpu_tests']['tail'])}",
    ]
    throughput = steps["throughput"]["result"]
    if throughput:
        lines += ["", "| online step | s/step | candidates/s | trained/s | data share |", "|---|---|---|---|---|"]
        for prefix, augment in (("kornia_", "kornia (before)"), ("", "fused")):
            for key in ("no_rals", "rals"):
                r = throughput.get(prefix + key)
                if r:
                    what = f"no RALS (trains {r['trained']})" if key == "no_rals" else "RALS "
                    what += f"(scores {r['candidates']}, trains {r['trained']})" if key == "rals" else ""
                    lines.append(step_row(f"{what}, {augment} augmentation", r))
        lines += [
            "",
            f"RALS / no-RALS step time: {throughput['rals_over_no_rals_step_time']:.2f} (stream batches "
            f"{throughput['stream_batches_timed']} timed).",
        ]
        if "kornia" in throughput:
            lines.append(f"Before (kornia): {throughput['kornia']}.")
        if not report["dry_run"]:
            goals = [
                f"{key}: {throughput[key]['trained_per_s']:.0f} trained/s (goal {goal}), data share "
                f"{throughput[key]['data_share']:.1%} (goal <= {GOAL_DATA_SHARE:.0%}): "
                + (
                    "met"
                    if throughput[key]["trained_per_s"] >= goal and throughput[key]["data_share"] <= GOAL_DATA_SHARE
                    else "missed"
                )
                for key, goal in GOAL_TRAINED_PER_S.items()
            ]
            lines.append("Issue 42's goals: " + "; ".join(goals) + ".")
    imagenet = steps.get("imagenet", {}).get("result")
    if imagenet:
        lines += [
            "",
            f"ImageNet-100 path ({imagenet['images']} synthetic {imagenet['jpeg_px']} px JPEGs, {imagenet['crop_px']} px "
            "crops, Barlow Twins without RALS, memory of file indices):",
            "",
            "| loader | s/step | candidates/s | trained/s | data share |",
            "|---|---|---|---|---|",
        ]
        for loader in ("torch", "dali"):
            r = imagenet.get(loader)
            lines.append(step_row(loader, r) if isinstance(r, dict) else f"| {loader} | {r} | | | |")
    syncs = steps["syncs"]["result"]
    if syncs:
        lines += [
            "",
            f"Host syncs per local step (N = {syncs['steps_per_batch']}): no RALS {syncs['no_rals']['per_local_step']:.2f}, "
            f"RALS {syncs['rals']['per_local_step']:.2f} ({syncs['rals']['counted']}).",
        ]
    full = steps["full"]["result"]
    if full:
        measured = full.get("extrapolated_train_s", full["train_s"])
        how = f"extrapolated: {full['note']}" if "extrapolated_train_s" in full else "measured over the whole stream"
        verdict = "" if report["dry_run"] else f"; goal < {GOAL_S} s: {'met' if measured < GOAL_S else 'missed'}"
        lines += [
            "",
            f"Full BT+RALS online run (width {full['width']}, {full['stream_images']} stream images in "
            f"{full['stream_batches']} batches, N = {full['steps_per_batch']}, memory {full['memory_capacity']}): "
            f"{measured:.0f} s of training ({how}){verdict}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("steps", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    steps = [json.loads(line) for line in args.steps.read_text().splitlines() if line.strip()]
    report = {"date": datetime.date.today().isoformat(), "dry_run": args.dry_run, "steps": steps}
    (args.outdir / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (args.outdir / "gpu_check.md").write_text(markdown(report))
    print((args.outdir / "gpu_check.md").read_text())
    failed = [s["step"] for s in steps if s["rc"] != 0]
    if failed:
        print(f"error: GPU check steps failed: {', '.join(failed)} (their logs are in {args.outdir})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
