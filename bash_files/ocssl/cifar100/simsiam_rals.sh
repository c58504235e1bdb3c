#!/usr/bin/env bash
# Ours (RALS), simsiam on cifar100: bash bash_files/ocssl/cifar100/simsiam_rals.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 simsiam_rals trained_models/simsiam-cifar100-task1/final.ckpt "$@"
