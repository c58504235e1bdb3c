#!/usr/bin/env bash
# Online SSL (simclr, imagenet100), paper settings: bash bash_files/ocssl/imagenet100/simclr.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
# STEPS is N, the optimizer steps per stream batch (10/20/50/100; pct_start 0.25 for 50 as in the paper).
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
STEPS=10; if [[ ${1:-} =~ ^[0-9]+$ ]]; then STEPS=$1; shift; fi
TASK1=trained_models/simclr-imagenet100-task1/final.ckpt; if [[ -n ${1:-} && $1 != +* ]]; then TASK1=$1; shift; fi
PCT=0.5; [ "$STEPS" = 50 ] && PCT=0.25
python main_pretrain.py --config-name online/imagenet100/simclr ++online.steps_per_batch="$STEPS" ++online.pct_start="$PCT" \
  ++pretrained_ckpt="$TASK1" ++name="simclr-imagenet100-online-${STEPS}steps" "$@"
