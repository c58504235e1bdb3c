#!/usr/bin/env bash
# Linear evaluation of a frozen backbone: bash bash_files/linear/cifar100/linear.sh CHECKPOINT [++key=value ...]
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
CKPT=$1; shift
python main_linear.py --config-name linear/cifar100 ++pretrained_ckpt="$CKPT" "$@"
