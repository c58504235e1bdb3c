#!/usr/bin/env bash
# SimCLR under CLA/CLIMB's protocol on Split CIFAR-100 (docs/streams.md): 20 tasks, stream minibatches of 10, 3 passes,
# 128 replayed samples, from random weights (no task-1 checkpoint):
#   bash bash_files/ocssl/cifar100/simclr_cla.sh [++key=value ...]   (e.g. ++online.stream.blurry=0.1)
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647
exec python main_pretrain.py --config-name online/cifar100/simclr_cla "$@"
