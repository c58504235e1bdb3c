"""Batched augmentation of uint8 image batches on the training device (kornia), per-sample random parameters.

Online training re-augments stream + memory samples at every one of its N steps, so augmentation must be a few
batched tensor ops rather than per-image PIL work.

The random parameters (crop boxes, jitter factors, coins) are drawn on the CPU whatever device the images are on.
kornia 0.9 moves its samplers with the module (``.to(cuda)``), and then reads the drawn coins in Python to decide
which samples an op applies to: on a GPU each of those reads is a host sync (about 14 per local step), and kornia
warns that some of its generators fail on some devices. A few hundred parameters cost nothing to draw on the host,
and kornia copies them to the images' device where it needs them.
"""

import kornia.augmentation as K
import torch
from kornia.augmentation.base import _BasicAugmentationBase
from torch import nn


def _blur_kernel(crop_size: int) -> int:
    """Odd kernel about a tenth of the image side, as SimCLR's recipe uses."""
    k = max(3, int(0.1 * crop_size))
    return k if k % 2 else k + 1


class Normalize(nn.Module):
    """uint8 (or [0, 1] float) images to normalized float."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return (x - self.mean) / self.std


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255) if x.dtype == torch.uint8 else x


class HostSampledAugment(nn.Module):
    """A module whose kornia augmentations (``self.ops``) stay on the CPU when the module moves (``.to(cuda)``);
    the rest of it (normalization constants) moves. The ops keep their place in ``state_dict``."""

    def _apply(self, fn, *args, **kwargs):
        ops = self._modules.pop("ops")
        try:
            return super()._apply(fn, *args, **kwargs)
        finally:
            self._modules["ops"] = ops


def sampler_devices(module: nn.Module) -> set[torch.device]:
    """Where the kornia augmentations in ``module`` draw their random parameters."""
    devices = set()
    for op in module.modules():
        if isinstance(op, _BasicAugmentationBase):
            devices.add(torch.device(op.device))
            if op._param_generator is not None:
                devices.add(torch.device(op._param_generator.device))
    return devices


def random_resized_crop(crop_size: int, scale: tuple[float, float]) -> K.RandomResizedCrop:
    """Crops of every sample resampled in one batched warp: kornia's default ``slice`` mode loops over the samples
    (about 765 resize kernels for two views of 384 candidates). The boxes are drawn the same way in both modes."""
    return K.RandomResizedCrop((crop_size, crop_size), scale=scale, cropping_mode="resample")


class ViewAugment(HostSampledAugment):
    """One view of solo-learn's recipe: random resized crop, colour jitter, grayscale, blur, solarization, flip."""

    def __init__(self, view_cfg, crop_size: int, mean, std) -> None:
        super().__init__()
        blur = _blur_kernel(crop_size)
        self.ops = nn.Sequential(
            random_resized_crop(crop_size, (view_cfg.crop_min_scale, view_cfg.crop_max_scale)),
            # torchvision's ColorJitter semantics, as solo-learn and CaSSLe use (cassle/utils/pretrain_dataloader.py):
            # brightness multiplies, contrast blends toward the image's mean grey. kornia's ColorJiggle (additive
            # brightness, contrast without the mean) clipped 37% of real CIFAR pixels at SimCLR's strengths,
            # against 11% for torchvision. Factors are per sample; the order of the four ops is drawn per batch.
            K.ColorJitter(
                view_cfg.brightness, view_cfg.contrast, view_cfg.saturation, view_cfg.hue, p=view_cfg.color_jitter_prob
            ),
            K.RandomGrayscale(p=view_cfg.gray_scale_prob),
            K.RandomGaussianBlur((blur, blur), (0.1, 2.0), p=view_cfg.gaussian_prob),
            # thresholds/additions of 0: always solarize at 0.5 as torchvision's RandomSolarize(128) does.
            K.RandomSolarize(0.0, 0.0, p=view_cfg.solarization_prob),
            K.RandomHorizontalFlip(p=view_cfg.horizontal_flip_prob),
        )
        self.normalize = Normalize(mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.ops(to_unit_float(x)))


class MultiViewAugment(nn.Module):
    """Two (or more) independently augmented views of a uint8 batch, each with its own recipe."""

    def __init__(self, view_cfgs, crop_size: int, mean, std) -> None:
        super().__init__()
        self.views = nn.ModuleList(ViewAugment(v, crop_size, mean, std) for v in view_cfgs)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [view(x) for view in self.views]


class LinearTrainAugment(HostSampledAugment):
    """Linear-probe training: random resized crop (scale 0.08-1) and flip, as solo-learn's linear recipe."""

    def __init__(self, crop_size: int, mean, std) -> None:
        super().__init__()
        self.ops = nn.Sequential(random_resized_crop(crop_size, (0.08, 1.0)), K.RandomHorizontalFlip())
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.ops(to_unit_float(x)))


class EvalTransform(nn.Module):
    """Evaluation: center crop to ``crop_size`` (a no-op for CIFAR-size data) and normalize."""

    def __init__(self, crop_size: int, mean, std) -> None:
        super().__init__()
        self.crop_size = crop_size
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (h, w) != (self.crop_size, self.crop_size):
            top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
            x = x[..., top : top + self.crop_size, left : left + self.crop_size]
        return self.normalize(x)
