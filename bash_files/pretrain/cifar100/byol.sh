#!/usr/bin/env bash
# Task-1 offline pretraining (byol, cifar100): the checkpoint that initializes every strategy (paper Sec. 5.2).
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
python main_pretrain.py --config-name pretrain/cifar100/byol "$@"
