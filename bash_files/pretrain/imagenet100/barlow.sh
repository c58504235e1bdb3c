#!/usr/bin/env bash
# Task-1 offline pretraining (barlow, imagenet100): the checkpoint that initializes every strategy (paper Sec. 5.2).
# ImageNet-100: a folder tree with train/<class> and val/<class> under data.data_dir. GPUS=2 bash ... trains on 2 GPUs.
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
. "$(dirname "$0")/../../loader.sh"
. "$(dirname "$0")/../../gpus.sh"
python main_pretrain.py --config-name pretrain/imagenet100/barlow "$LOADER_ARGS" "${DEVICE_ARGS[@]}" \
  ++optimizer.batch_size="$PER_GPU_BATCH" "$@"
