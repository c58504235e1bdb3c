#!/usr/bin/env bash
# Sourced by the ImageNet-100 scripts: LOADER_ARGS selects the DALI loader when CUDA and NVIDIA DALI are present
# (GPU decoding and augmentation), the torch loader otherwise. A later ++data.loader=... on the command line wins.
LOADER_ARGS=++data.loader=$(python -c "from solo_ossl.utils.device import default_image_loader; print(default_image_loader())")
