"""The augmentation pipeline of solo_ossl/data/augment.py before issue 42 (kornia 0.9, batched ``resample`` crops),
kept as the reference that tests/test_augment.py and benchmarks/augment_ops.py compare the fused augmentation with."""

import kornia.augmentation as K
import torch

from solo_ossl.data import augment as A


def kornia_view(v, crop_size: int) -> torch.nn.Sequential:
    """The pipeline of solo_ossl/data/augment.py before issue 42 (kornia 0.9, resample crops, host samplers)."""
    blur = A.blur_kernel_size(crop_size)
    return torch.nn.Sequential(
        K.RandomResizedCrop(
            (crop_size, crop_size), scale=(v.crop_min_scale, v.crop_max_scale), cropping_mode="resample"
        ),
        K.ColorJitter(v.brightness, v.contrast, v.saturation, v.hue, p=v.color_jitter_prob),
        K.RandomGrayscale(p=v.gray_scale_prob),
        K.RandomGaussianBlur((blur, blur), (0.1, 2.0), p=v.gaussian_prob),
        K.RandomSolarize(0.0, 0.0, p=v.solarization_prob),
        K.RandomHorizontalFlip(p=v.horizontal_flip_prob),
    )


def params_of(ops: torch.nn.Sequential) -> A.ViewParams:
    """The parameters kornia drew in its last call, as ours."""
    crop, jitter, gray, blur, solarize, flip = (op._params for op in ops)
    src = crop["src"]
    size = torch.stack([src[:, 1, 0] - src[:, 0, 0] + 1, src[:, 2, 1] - src[:, 0, 1] + 1], 1)
    factors = [jitter[f"{name}_factor"] for name in A.JITTER_STEPS]
    return A.ViewParams(
        boxes=torch.cat([src[:, 0], size], 1),
        flip=flip["batch_prob"] > 0.5,
        jitter=jitter["batch_prob"] > 0.5,
        factors=torch.stack(factors, 1),
        orders=(tuple(jitter["order"].tolist()),),
        gray=gray["batch_prob"] > 0.5,
        blur=blur["batch_prob"] > 0.5,
        sigma=blur["sigma"],
        solarize=solarize["batch_prob"] > 0.5,
    )


class KorniaMultiView(torch.nn.Module):
    """The kornia pipeline as a drop-in for ``MultiViewAugment`` (the GPU check's "before"): its samplers stay on
    the host (a plain list, which ``.to(device)`` leaves alone), the normalization constants move."""

    def __init__(self, view_cfgs, crop_size: int, mean, std) -> None:
        super().__init__()
        self.views = [kornia_view(v, crop_size) for v in view_cfgs]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.float() / 255
        return [(view(x) - self.mean) / self.std for view in self.views]
