#!/usr/bin/env bash
# CaSSLe (barlow, imagenet100): tasks 2-5, each 400 epochs from the previous task's model, distilling from it.
#   [GPUS=2] bash bash_files/continual/imagenet100/barlow.sh [TASK1_CKPT] [++key=value ...]
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
TASK1=trained_models/barlow-imagenet100-task1/final.ckpt
if [[ -n ${1:-} && $1 != +* ]]; then TASK1=$1; shift; fi
. "$(dirname "$0")/../../loader.sh"
. "$(dirname "$0")/../../gpus.sh"
python main_continual.py --config-name pretrain/imagenet100/barlow "$LOADER_ARGS" "${DEVICE_ARGS[@]}" \
  ++optimizer.batch_size="$PER_GPU_BATCH" ++pretrained_ckpt="$TASK1" ++name=barlow-imagenet100-cassle "$@"
