from solo_ossl.backbones.resnet import ResNet18, resnet18

BACKBONES = {"resnet18": resnet18}

__all__ = ["BACKBONES", "ResNet18", "resnet18"]
