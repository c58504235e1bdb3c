#!/usr/bin/env bash
# CaSSLe (barlow, imagenet100): tasks 2-5, 400 epochs each from the previous task's model, distilling from it.
#   [GPUS=2] bash bash_files/continual/imagenet100/barlow.sh [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../continual.sh" imagenet100 barlow "$@"
