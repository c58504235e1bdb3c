#!/usr/bin/env bash
# Ours without RALS, barlow on imagenet100, paper settings: bash bash_files/ocssl/imagenet100/barlow.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" imagenet100 barlow trained_models/barlow-imagenet100-task1/final.ckpt "$@"
