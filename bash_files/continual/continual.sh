#!/usr/bin/env bash
# Shared body of bash_files/continual/<dataset>/<method>.sh: CaSSLe over tasks 2-5 from a task-1 checkpoint.
#   bash continual.sh DATASET METHOD [TASK1_CKPT] [++key=value ...]
# ImageNet-100 takes GPUS (bash_files/gpus.sh) and picks the DALI loader when it can (bash_files/loader.sh).
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
DATASET=$1 METHOD=$2
shift 2
TASK1=trained_models/$METHOD-$DATASET-task1/final.ckpt
if [[ -n ${1:-} && $1 != +* ]]; then TASK1=$1; shift; fi
EXTRA=()
if [ "$DATASET" = imagenet100 ]; then
  . "$(dirname "$0")/../loader.sh"
  . "$(dirname "$0")/../gpus.sh"
  EXTRA=("$LOADER_ARGS" "${DEVICE_ARGS[@]}" "++optimizer.batch_size=$PER_GPU_BATCH")
fi
python main_continual.py --config-name "pretrain/$DATASET/$METHOD" "${EXTRA[@]}" ++pretrained_ckpt="$TASK1" \
  ++name="$METHOD-$DATASET-cassle" "$@"
