#!/usr/bin/env bash
# The main job on the embedded real-image default (20 CIFAR-100 classes, shipped with the package):
# task-1 offline pretraining -> online Barlow Twins with SLCLRS + memory + RALS over tasks 2-5 -> linear probes.
# Extra ++key=value arguments go to the online run (e.g. ++online.steps_per_batch=20).
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
OUT=${OUT:-trained_models/quickstart}
COMMON=(++output_dir="$OUT" ++progress_bar="${PROGRESS:-true}")

python main_pretrain.py --config-name pretrain/embedded/barlow "${COMMON[@]}"
TASK1="$OUT/barlow-embedded-task1/final.ckpt"
python main_pretrain.py --config-name online/embedded/barlow_rals "${COMMON[@]}" ++pretrained_ckpt="$TASK1" "$@"
ONLINE="$OUT/barlow-embedded-online-rals/final.ckpt"

for run in random:++random_init=true task1:++pretrained_ckpt="$TASK1" online:++pretrained_ckpt="$ONLINE"; do
  python main_linear.py --config-name linear/embedded ++name="linear-${run%%:*}" ++output_dir="$OUT" \
    ++backbone.width=0.25 "${run#*:}" | tail -n 1
done
python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
acc = {r: json.load(open(f"{out}/linear-{r}/linear_results.json"))["top1"] for r in ("random", "task1", "online")}
print(f"linear top-1 on the embedded test set: random init {acc['random']:.2f}% | "
      f"task-1 offline start {acc['task1']:.2f}% | online BT+RALS {acc['online']:.2f}%")
PY
