#!/usr/bin/env bash
# Ours (RALS), mocov3 on cifar100: bash bash_files/ocssl/cifar100/mocov3_rals.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 mocov3_rals trained_models/mocov3-cifar100-task1/final.ckpt "$@"
