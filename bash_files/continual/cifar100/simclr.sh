#!/usr/bin/env bash
# CaSSLe (simclr, cifar100): tasks 2-5, each 500 epochs from the previous task's model, distilling from it.
#   bash bash_files/continual/cifar100/simclr.sh [TASK1_CKPT] [++key=value ...]
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
TASK1=trained_models/simclr-cifar100-task1/final.ckpt
if [[ -n ${1:-} && $1 != +* ]]; then TASK1=$1; shift; fi
python main_continual.py --config-name pretrain/cifar100/simclr ++pretrained_ckpt="$TASK1" ++name=simclr-cifar100-cassle "$@"
