#!/usr/bin/env bash
# Linear evaluation of a frozen backbone: [GPUS=n] bash bash_files/linear/imagenet100/linear.sh CHECKPOINT [++key=value ...]
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
CKPT=$1; shift
. "$(dirname "$0")/../../loader.sh"
. "$(dirname "$0")/../../gpus.sh"
python main_linear.py --config-name linear/imagenet100 "$LOADER_ARGS" "${DEVICE_ARGS[@]}" ++pretrained_ckpt="$CKPT" "$@"
