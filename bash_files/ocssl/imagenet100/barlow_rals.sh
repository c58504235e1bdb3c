#!/usr/bin/env bash
# Ours (RALS), barlow on imagenet100, paper settings: bash bash_files/ocssl/imagenet100/barlow_rals.sh [STEPS=10] [TASK1_CKPT] [++key=value ...]
exec bash "$(dirname "$0")/../online.sh" imagenet100 barlow_rals trained_models/barlow-imagenet100-task1/final.ckpt "$@"
