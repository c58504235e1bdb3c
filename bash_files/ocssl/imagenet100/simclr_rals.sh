#!/usr/bin/env bash
# Ours (RALS), simclr on imagenet100, paper settings: bash bash_files/ocssl/imagenet100/simclr_rals.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" imagenet100 simclr_rals trained_models/simclr-imagenet100-task1/final.ckpt "$@"
