#!/usr/bin/env bash
# Ours without RALS, byol on cifar100: bash bash_files/ocssl/cifar100/byol.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 byol trained_models/byol-cifar100-task1/final.ckpt "$@"
