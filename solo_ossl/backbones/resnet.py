"""ResNet18 with a CIFAR stem (3x3 conv, stride 1, padding 2, no max-pool) or the ImageNet stem, and a width multiplier.

Parameter names follow torchvision's ``resnet18`` (``conv1``, ``bn1``, ``layer1.0.conv1`` ...) without ``fc``,
so a torchvision state dict (its ``fc.*`` dropped) loads into the full-width ImageNet form.
torchvision's own ResNet cannot scale BasicBlock widths, which CPU-scale experiments need.
"""

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet18 feature extractor; ``forward`` returns pooled features of size ``num_features``."""

    def __init__(self, cifar: bool = True, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"backbone width must be positive, got {width}")
        planes = [max(1, round(64 * width * 2**i)) for i in range(4)]
        if cifar:
            # padding 2, as solo-learn and CaSSLe build it (cassle/methods/base.py): 34x34 maps from 32x32 images.
            self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 2, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, planes[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        layers, in_planes = [], planes[0]
        for i, p in enumerate(planes):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(in_planes, p, stride), BasicBlock(p, p)))
            in_planes = p
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = planes[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: every block starts as identity (Goyal et al., 2017).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def resnet18(cifar: bool = True, width: float = 1.0) -> ResNet18:
    return ResNet18(cifar=cifar, width=width)
