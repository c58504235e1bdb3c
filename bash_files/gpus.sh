#!/usr/bin/env bash
# Sourced by the ImageNet-100 scripts: GPUS (default 1) is the number of GPUs of this node to train on. With more
# than one, the run uses Lightning's DDP with synchronized BatchNorm, as CaSSLe's ImageNet-100 scripts do (2 GPUs,
# cassle/bash_files/continual/imagenet-100/class/barlow_distill.sh: --gpus 0,1 --accelerator ddp --sync_batchnorm).
# Offline batch sizes are per GPU (solo-learn's convention): PER_GPU_BATCH splits the global batch 256 over them.
GPUS=${GPUS:-1}
DEVICE_ARGS=("++devices=$GPUS")
if [ "$GPUS" -gt 1 ]; then DEVICE_ARGS+=("++strategy=ddp" "++sync_batchnorm=true"); fi
PER_GPU_BATCH=$((256 / GPUS))
