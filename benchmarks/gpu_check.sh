#!/usr/bin/env bash
# The GPU path verified in one command, within 8 minutes on one H200 (the project's lent GPU: Python 3.12, torch 2.11,
# lightning, timm and torchmetrics installed; kornia and omegaconf not; no network):
#   bash benchmarks/gpu_check.sh OUTDIR              # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run OUTDIR    # every step on the CPU at tiny sizes (what tests/test_gpu_check.py runs)
# It writes OUTDIR/gpu_check.json and OUTDIR/gpu_check.md: the device, the versions, each step's command, exit code and
# seconds, the GPU tests' outcome, the online step's throughput without and with RALS (their ratio, the data share),
# with the fused augmentation and the kornia pipeline it replaced (issue 42's before and after), the ImageNet-100
# path at 224 px (torch loader; DALI's GPU path where DALI is installed), host syncs per local step, and the
# wall-clock of a full-size Barlow Twins + RALS online run (N = 10), stopped at BUDGET_S and extrapolated.
#
# The wheels folder: the packages the GPU machine lacks, for Python 3.12 manylinux x86_64, in .whl/ (git-ignored;
# 7.5 MB, so that the repository and the wheels travel within the device tool's 64 MiB). Fill it here with:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl kornia==0.9.0 kornia_rs==0.2.0 omegaconf==2.4.0
# (omegaconf 2.4 needs only PyYAML, which the machine has; hydra-core, the entry points' command line, is not on the
# check's path: it calls the drivers and load_config directly). Then, with the device tool: carry [".whl"] and run
#   bash benchmarks/gpu_check.sh $OUT
# NVIDIA DALI is not carried: its wheel (nvidia-dali-cuda120 2.4.0, 424 MB) is far over one call's 64 MiB, so its
# tests skip there with their reason and the `imagenet` step measures the torch loader only. To measure DALI's GPU
# path (nvJPEG `mixed` decoding, GPU augmentation), split the wheel into 7 parts (`split -b 60M`) under an ignored
# folder, carry one per back-to-back call (the machine keeps ignored paths while warm, about 30 s between calls),
# `cat` them back, `pip install --no-deps --target /tmp/gpu_check_site` it, and run
# `python benchmarks/gpu_check.py imagenet` alone: about 5 of the 15 device minutes go to the transfer.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=""
if [ "${1:-}" = "--dry-run" ]; then DRY="--dry-run"; shift; fi
OUTDIR=${1:?usage: bash benchmarks/gpu_check.sh [--dry-run] OUTDIR}
mkdir -p "$OUTDIR"
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}  # another folder of the same wheels for another Python (the local check with torch 2.11)
BUDGET_S=${BUDGET_S:-150}  # the full run's share of the 8 minutes; past it, it is extrapolated
[ -n "$DRY" ] && BUDGET_S=${BUDGET_S_DRY:-120}
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647 PYTHONUNBUFFERED=1
STEPS="$OUTDIR/steps.jsonl"
: > "$STEPS"

if compgen -G "$WHEELS/*.whl" > /dev/null; then  # the carried wheels, beside the machine's own packages
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site "$WHEELS"/*.whl \
    || { echo "error: installing the carried wheels in $WHEELS/ failed" >&2; exit 2; }
  export PYTHONPATH="/tmp/gpu_check_site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

step() {  # step NAME COMMAND...: run it, keep its log, record its exit code, seconds and RESULT line
  local name=$1; shift
  local start end rc
  start=$(date +%s.%N)
  "$@" > "$OUTDIR/$name.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  "$PYTHON" - "$name" "$rc" "$start" "$end" "$OUTDIR/$name.log" "$*" >> "$STEPS" <<'PY'
import json, sys
name, rc, start, end, log, command = sys.argv[1:]
lines = open(log, errors="replace").read().splitlines()
result = next((json.loads(l[7:]) for l in reversed(lines) if l.startswith("RESULT ")), None)
print(json.dumps({"step": name, "command": command, "rc": int(rc), "seconds": round(float(end) - float(start), 1),
                  "result": result, "tail": lines[-15:] if int(rc) else lines[-3:]}))
PY
  echo "[gpu_check] $name: rc $rc, $(awk "BEGIN {print $end - $start}") s"
}

step env "$PYTHON" benchmarks/gpu_check.py env $DRY
step gpu_tests "$PYTHON" -m pytest -q -m gpu -rs -p no:cacheprovider tests
step throughput "$PYTHON" benchmarks/gpu_check.py throughput $DRY
step imagenet "$PYTHON" benchmarks/gpu_check.py imagenet $DRY
step syncs "$PYTHON" benchmarks/gpu_check.py syncs $DRY
step full "$PYTHON" benchmarks/gpu_check.py full $DRY --budget-s "$BUDGET_S"
"$PYTHON" benchmarks/gpu_check_report.py "$STEPS" "$OUTDIR" ${DRY:+--dry-run}
