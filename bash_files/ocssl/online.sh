#!/usr/bin/env bash
# Shared body of bash_files/ocssl/<dataset>/<method>.sh:
#   bash online.sh DATASET CONFIG DEFAULT_TASK1_CKPT [STEPS=10] [TASK1_CKPT] [++key=value ...]
# STEPS is N, the optimizer steps per stream batch (10/20/50/100; the configs' pct_start_by_steps gives 0.25 at 50).
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
DATASET=$1 CONFIG=$2 TASK1=$3
shift 3
STEPS=10; if [[ ${1:-} =~ ^[0-9]+$ ]]; then STEPS=$1; shift; fi
if [[ -n ${1:-} && $1 != +* ]]; then TASK1=$1; shift; fi
LOADER_ARGS= DEVICE_ARGS=()
if [ "$DATASET" = imagenet100 ]; then . "$(dirname "$0")/../loader.sh"; . "$(dirname "$0")/../gpus.sh"; fi
# The online stream batch (128), memory and k are global: with GPUS > 1 each GPU takes its share.
python main_pretrain.py --config-name "online/$DATASET/$CONFIG" $LOADER_ARGS "${DEVICE_ARGS[@]}" ++online.steps_per_batch="$STEPS" \
  ++pretrained_ckpt="$TASK1" ++name="$CONFIG-$DATASET-online-${STEPS}steps" "$@"
