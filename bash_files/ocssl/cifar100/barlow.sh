#!/usr/bin/env bash
# Ours without RALS, barlow on cifar100, paper settings: bash bash_files/ocssl/cifar100/barlow.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 barlow trained_models/barlow-cifar100-task1/final.ckpt "$@"
