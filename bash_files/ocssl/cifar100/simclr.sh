#!/usr/bin/env bash
# Ours without RALS, simclr on cifar100, paper settings: bash bash_files/ocssl/cifar100/simclr.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 simclr trained_models/simclr-cifar100-task1/final.ckpt "$@"
