#!/usr/bin/env bash
# CaSSLe (mocov3, cifar100): tasks 2-5, 500 epochs each from the previous task's model, distilling from it.
#   bash bash_files/continual/cifar100/mocov3.sh [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../continual.sh" cifar100 mocov3 "$@"
