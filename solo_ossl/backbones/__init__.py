from torch import nn

from solo_ossl.backbones.resnet import ResNet18, resnet18

BACKBONES = {"resnet18": resnet18}


def build_backbone(backbone_cfg, crop_size: int) -> nn.Module:
    """The configured backbone; ``backbone.cifar`` null picks the CIFAR stem for crops of at most 64 px."""
    cifar = backbone_cfg.cifar if backbone_cfg.cifar is not None else crop_size <= 64
    return BACKBONES[backbone_cfg.name](cifar=cifar, width=backbone_cfg.width)


__all__ = ["BACKBONES", "ResNet18", "build_backbone", "resnet18"]
