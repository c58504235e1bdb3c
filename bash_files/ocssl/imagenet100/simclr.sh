#!/usr/bin/env bash
# Ours without RALS, simclr on imagenet100, paper settings: bash bash_files/ocssl/imagenet100/simclr.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" imagenet100 simclr trained_models/simclr-imagenet100-task1/final.ckpt "$@"
