#!/usr/bin/env bash
# Ours without RALS, vicreg on cifar100 (not in the paper): bash bash_files/ocssl/cifar100/vicreg.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" cifar100 vicreg trained_models/vicreg-cifar100-task1/final.ckpt "$@"
