"""Batched augmentation of uint8 image batches on the training device: solo-learn's recipe with per-sample random
parameters, in a fixed number of tensor ops whatever the batch size.

Online training re-augments stream + memory samples at every one of its N steps. At 32 px a GPU step is bound by
kernel launches, not pixels: the kornia pipeline this replaces dispatched 1,500 aten ops per two-view call, each a
launch or host work on a GPU (``benchmarks/augment_ops.py``; numbers in ``benchmarks/RESULTS.md``). Here:

- all views of a call form one batch: their parameters come from one uniform draw, and every op but the colour
  jitter (whose order is drawn per view) runs once over all views' samples;
- crop, resize and flip are one bilinear resampling with per-sample sampling grids (kornia's ``resample`` crop:
  the box's corner pixels map to the output's, ``align_corners=True``); a flip reverses a sample's x coordinates;
- colour jitter follows torchvision's formulas (brightness multiplies, contrast blends toward the image's mean grey,
  saturation toward its grayscale, hue rotates in HSV) with per-sample factors; the order of the four is drawn per
  view and call, as kornia's ``ColorJitter`` does (torchvision draws it per image); samples outside the jitter's
  probability are restored by one masked select;
- hue rotates in closed form: a pixel keeps its max and min, and its channels follow the HSV sextant formula;
- grayscale and solarization are masked selects; blur is one grouped separable convolution with a per-sample
  Gaussian kernel, run on the blurred samples only (their indices are known on the host, so selecting them reads
  nothing back from the device; at 224 px the blur is most of the augmentation's compute);
- normalization comes last; an op whose probability is 0 in every view is left out.

Parameters are drawn on the host from torch's global CPU generator (so a run's random states resume it, and no GPU
value is ever read back) and travel to the images' device in one copy. ``tests/test_augment.py`` holds the parity
with kornia's ops for fixed parameters and with its samplers' distributions.
"""

import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ITU-R BT.601 luma, as torchvision's and kornia's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)
CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 boxes before its fallback
ASPECT_RATIO = (3 / 4, 4 / 3)
JITTER_STEPS = ("brightness", "contrast", "saturation", "hue")
# Columns of one uniform draw per sample: values uniform in a range, then coins, then the crop's start positions.
RANGES = ("area",) * CROP_ATTEMPTS + ("log_ratio",) * CROP_ATTEMPTS + JITTER_STEPS + ("sigma",)
COINS = ("flip", "jitter", "gray", "blur", "solarize")
NEUTRAL_FACTORS = (1.0, 1.0, 1.0, 0.0)
BLUR_SIGMA = (0.1, 2.0)


def blur_kernel_size(crop_size: int) -> int:
    """Odd kernel about a tenth of the image side, as SimCLR's recipe uses."""
    k = max(3, int(0.1 * crop_size))
    return k if k % 2 else k + 1


@dataclass(frozen=True)
class Recipe:
    """The views' recipes as host tensors: ``low``/``high`` (views, len(RANGES)) and ``prob`` (views, len(COINS))."""

    low: Tensor
    high: Tensor
    prob: Tensor

    @classmethod
    def from_views(cls, view_cfgs) -> "Recipe":
        lows, highs, probs = [], [], []
        for v in view_cfgs:
            jitter = [(max(0.0, 1 - v.brightness), 1 + v.brightness), (max(0.0, 1 - v.contrast), 1 + v.contrast)]
            jitter += [(max(0.0, 1 - v.saturation), 1 + v.saturation), (-v.hue, v.hue)]
            ranges = [(v.crop_min_scale, v.crop_max_scale)] * CROP_ATTEMPTS
            ranges += [tuple(math.log(r) for r in ASPECT_RATIO)] * CROP_ATTEMPTS + jitter + [BLUR_SIGMA]
            lows.append([lo for lo, _ in ranges])
            highs.append([hi for _, hi in ranges])
            probs.append(
                [v.horizontal_flip_prob, v.color_jitter_prob, v.gray_scale_prob, v.gaussian_prob, v.solarization_prob]
            )
        return cls(torch.tensor(lows), torch.tensor(highs), torch.tensor(probs))

    @classmethod
    def crop_and_flip(cls, scale: tuple[float, float], flip_prob: float = 0.5) -> "Recipe":
        """Only a random resized crop and a flip (the linear probe's training recipe)."""
        view = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, color_jitter_prob=0.0)
        view |= dict(gray_scale_prob=0.0, gaussian_prob=0.0, solarization_prob=0.0, horizontal_flip_prob=flip_prob)
        return cls.from_views([SimpleNamespace(crop_min_scale=scale[0], crop_max_scale=scale[1], **view)])

    @property
    def views(self) -> int:
        return len(self.prob)

    def uses(self, coin: str) -> bool:
        """Whether any view applies this op (fixed when the augmentation is built: no data-dependent branch)."""
        return bool((self.prob[:, COINS.index(coin)] > 0).any())


@dataclass(frozen=True)
class ViewParams:
    """Per-sample parameters of one call, views stacked (view-major, ``B = views * n``), on the host.

    ``boxes`` (B, 4): x0, y0, width, height in source pixels; ``factors`` (B, 4): brightness, contrast, saturation
    multipliers and the hue shift in turns; ``orders``: the jitter steps' order, one per view; the rest (B,) bools
    and ``sigma`` (B,)."""

    boxes: Tensor
    flip: Tensor
    jitter: Tensor
    factors: Tensor
    orders: tuple[tuple[int, ...], ...]
    gray: Tensor
    blur: Tensor
    sigma: Tensor
    solarize: Tensor


def draw_params(recipe: Recipe, n: int, height: int, width: int) -> ViewParams:
    """Every view's parameters for ``n`` images of ``height`` x ``width``, from one uniform draw (the host's
    generator): torchvision's crop sampling (area uniform in the scale range, log aspect ratio uniform, the first of
    10 boxes that fits, else the whole image; a uniform integer start), factors uniform in their ranges, coins."""
    u = torch.rand(recipe.views, n, len(RANGES) + len(COINS) + 2)
    ranged = torch.lerp(recipe.low[:, None], recipe.high[:, None], u[..., : len(RANGES)]).flatten(0, 1)
    coins = (u[..., len(RANGES) : -2] < recipe.prob[:, None]).flatten(0, 1)
    start_draw = u[..., -2:].flatten(0, 1)
    dims = _host_constant((float(width), float(height)))
    # (B, attempts, 2) boxes: width sqrt(area * ratio), height sqrt(area / ratio), rounded.
    half_log_ratio = ranged[:, CROP_ATTEMPTS : 2 * CROP_ATTEMPTS, None] * _host_constant((0.5, -0.5))
    sizes = (ranged[:, :CROP_ATTEMPTS, None] * (height * width)).sqrt().mul(half_log_ratio.exp()).round()
    fits = ((sizes >= 1) & (sizes <= dims)).all(2)
    first = fits.byte().argmax(1)  # the first box that fits (argmax returns the first maximum)
    size = sizes[torch.arange(len(sizes)), first]
    # No box fits: the whole image (its aspect ratio, 1 for square images, lies in the ratio range).
    size = torch.where(fits.any(1, keepdim=True), size, dims)
    start = (start_draw * (dims - size + 1)).floor()
    return ViewParams(
        boxes=torch.cat([start, size], 1),
        flip=coins[:, 0],
        jitter=coins[:, 1],
        factors=ranged[:, 2 * CROP_ATTEMPTS : 2 * CROP_ATTEMPTS + 4],
        orders=tuple(tuple(torch.randperm(4).tolist()) for _ in range(recipe.views)),
        gray=coins[:, 2],
        blur=coins[:, 3],
        sigma=ranged[:, -1],
        solarize=coins[:, 4],
    )


def _host_constant(values: tuple) -> Tensor:
    return _constant(values, (len(values),), torch.device("cpu"), torch.float32)


# ---- host-side preparation: what the device ops read, packed for one copy ----------------------------------------
def crop_transforms(boxes: Tensor, flip: Tensor, height: int, width: int) -> Tensor:
    """(B, 6): each sample's ``affine_grid`` matrix (row-major 2 x 3, ``align_corners=True``) that maps the output's
    corner pixels to the box's corner pixels, its x axis reversed where ``flip``: kornia's ``resample`` crop."""
    start, size = boxes[:, :2], boxes[:, 2:]
    dims = _host_constant((float(width), float(height)))
    scale = (size - 1) / (dims - 1).clamp_min(1)
    centre = (2 * start + size - 1) / (dims - 1).clamp_min(1) - 1
    scale_x = torch.where(flip, -scale[:, 0], scale[:, 0])
    zero = torch.zeros_like(scale_x)
    return torch.stack([scale_x, zero, centre[:, 0], zero, scale[:, 1], centre[:, 1]], 1)


@functools.cache
def _gaussian_offsets(size: int) -> tuple[Tensor, Tensor]:
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    return -0.5 * offsets**2, (offsets == 0).float()


def gaussian_kernels(sigma: Tensor, blur: Tensor, size: int) -> Tensor:
    """(B, size) normalized 1-D Gaussian taps per sample (kornia's ``get_gaussian_kernel1d``); a unit impulse where
    ``blur`` is false, so the convolution leaves those samples unchanged."""
    half_squares, impulse = _gaussian_offsets(size)
    taps = (half_squares / sigma[:, None] ** 2).exp()
    return torch.where(blur[:, None], taps / taps.sum(1, keepdim=True), impulse)


def jitter_columns(factors: Tensor, jitter: Tensor) -> Tensor:
    """(B, 6): brightness, contrast and saturation factors, then the hue rotation's per-channel phase
    ``6 * shift + (5, 3, 1)`` (see ``adjust_hue``); neutral factors for samples not jittered."""
    factors = torch.where(jitter[:, None], factors, _host_constant(NEUTRAL_FACTORS))
    return torch.cat([factors[:, :3], factors[:, 3:] * 6 + _host_constant((5.0, 3.0, 1.0))], 1)


# ---- device ops (pure functions of images and per-sample parameters) ------------------------------------------------
def resized_crop(x: Tensor, transforms: Tensor, crop_size: int) -> Tensor:
    """Bilinear resampling of every sample on its own grid: crop, resize and flip in one ``grid_sample``."""
    grid = F.affine_grid(transforms.view(-1, 2, 3), [len(x), x.shape[1], crop_size, crop_size], align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _as_factor(f: Tensor) -> Tensor:
    return f if f.dim() == 4 else f.view(-1, 1, 1, 1)


@functools.cache
def _constant(values: tuple, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """A constant made once per device and dtype: no host-to-device copy per call."""
    return torch.tensor(values, dtype=dtype).view(shape).to(device)


def _luma(x: Tensor) -> Tensor:
    return _constant(LUMA, (1, 3, 1, 1), x.device, x.dtype)


def grayscale(x: Tensor) -> Tensor:
    """(B, 1, H, W) luma (a weighted sum: oneDNN's 1x1 convolution is 40x slower on CPU at 32 px)."""
    return (x * _luma(x)).sum(1, keepdim=True)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return (x * _as_factor(factor)).clamp_(0, 1)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend toward the image's mean grey (torchvision's ``adjust_contrast``)."""
    mean = grayscale(x).mean((2, 3), keepdim=True)
    return torch.lerp(mean, x, _as_factor(factor)).clamp_(0, 1)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend toward the pixel's grey (torchvision's ``adjust_saturation``)."""
    return torch.lerp(grayscale(x), x, _as_factor(factor)).clamp_(0, 1)


def adjust_hue(x: Tensor, phase: Tensor) -> Tensor:
    """torchvision's hue shift (RGB -> HSV, hue + shift mod 1, HSV -> RGB) in closed form. ``phase`` (B, 3) is
    ``6 * shift + (5, 3, 1)``: with a pixel's max V, chroma C = max - min and hue in sextants h6, channel n is
    ``V - C * clamp(min(k, 4 - k), 0, 1)`` for ``k = (h6 + phase_n) mod 6``; a pixel keeps its max and min."""
    value, channel_of_max = x.max(1, keepdim=True)
    chroma = value - x.amin(1, keepdim=True)
    # (V - c) / C per channel; grey pixels (C = 0) give 0 and keep their value whatever their hue.
    distance = (value - x) / chroma.clamp_min(torch.finfo(x.dtype).tiny)
    # Hue in sextants when the max is red, green or blue: b - g, 2 + r - b, 4 + g - r (torchvision's _rgb2hsv), that
    # is, the previous channel's distance minus the next one's, plus 2 per channel index.
    candidates = (
        distance.roll(1, 1) - distance.roll(-1, 1) + _constant((0.0, 2.0, 4.0), (1, 3, 1, 1), x.device, x.dtype)
    )
    sextant = candidates.gather(1, channel_of_max)
    k = torch.remainder(sextant + (phase if phase.dim() == 4 else phase.view(-1, 3, 1, 1)), 6)
    return torch.addcmul(value, chroma, torch.minimum(k, 4 - k).clamp_(0, 1), value=-1)


def colour_jitter(x: Tensor, columns: Tensor, order: tuple[int, ...]) -> Tensor:
    """The four jitter steps in ``order`` with per-sample ``columns`` (``jitter_columns``, (B, 6) or (B, 6, 1, 1))."""
    brightness, contrast, saturation, phase = columns.view(-1, 6, 1, 1).split([1, 1, 1, 3], 1)
    steps = (
        lambda y: adjust_brightness(y, brightness),
        lambda y: adjust_contrast(y, contrast),
        lambda y: adjust_saturation(y, saturation),
        lambda y: adjust_hue(y, phase),
    )
    for step in order:
        x = steps[step](x)
    return x


def gaussian_blur(x: Tensor, kernels: Tensor) -> Tensor:
    """Separable blur with one kernel per sample (B, k): reflect padding, then one grouped convolution per axis."""
    b, c, h, w = x.shape
    k = kernels.shape[1]
    weight = kernels[:, None].expand(b, c, k).reshape(b * c, 1, k)
    padded = F.pad(x.reshape(1, b * c, h, w), (k // 2,) * 4, mode="reflect")
    blurred = F.conv2d(padded, weight[..., None], groups=b * c)
    return F.conv2d(blurred, weight[:, :, None], groups=b * c).view(b, c, h, w)


def blur_rows(x: Tensor, kernels: Tensor, rows: Tensor) -> Tensor:
    """``gaussian_blur`` of the samples ``rows`` (indices on x's device); the others unchanged."""
    return x.index_copy(0, rows, gaussian_blur(x.index_select(0, rows), kernels.index_select(0, rows)))


def solarize(x: Tensor, mask: Tensor) -> Tensor:
    """torchvision's ``RandomSolarize(0.5)`` on the masked samples: pixels at or above 0.5 become 1 - x."""
    return torch.where(_as_factor(mask) & (x >= 0.5), 1 - x, x)


def select(mask: Tensor, if_true: Tensor, if_false: Tensor) -> Tensor:
    return torch.where(_as_factor(mask), if_true, if_false)


class BatchAugment(nn.Module):
    """The views of one recipe per view, all drawn and applied together; ``forward`` returns one tensor per view."""

    def __init__(self, recipe: Recipe, crop_size: int, mean, std) -> None:
        super().__init__()
        self.recipe = recipe  # host tensors: a plain attribute, so ``.to(device)`` leaves them where they are drawn
        self.crop_size = crop_size
        self.blur_size = blur_kernel_size(crop_size)
        self.steps = {coin: recipe.uses(coin) for coin in COINS}
        self.normalize = Normalize(mean, std)

    def draw(self, n: int, height: int, width: int) -> ViewParams:
        return draw_params(self.recipe, n, height, width)

    def pack(self, params: ViewParams, height: int, width: int) -> Tensor:
        """(B, columns) host tensor with everything the device ops read: crop transforms, jitter, masks, blur."""
        parts = [
            crop_transforms(params.boxes, params.flip, height, width),
            jitter_columns(params.factors, params.jitter),
        ]
        parts += [torch.stack([params.jitter, params.gray, params.solarize], 1)]
        if self.steps["blur"]:
            parts += [gaussian_kernels(params.sigma, params.blur, self.blur_size)]
        return torch.cat(parts, 1)

    @torch.no_grad()
    def forward(self, x: Tensor, params: ViewParams | None = None) -> list[Tensor]:
        # In float32 whatever the run's precision: under bf16 autocast the sampling grid (a matmul) loses the
        # sub-pixel positions (0.5 in normalized units off the float32 views); the network casts the views itself.
        if torch.amp.is_autocast_available(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self.augment(x, params)
        return self.augment(x, params)

    def augment(self, x: Tensor, params: ViewParams | None = None) -> list[Tensor]:
        n, _, height, width = x.shape
        if params is None:
            params = self.draw(n, height, width)
        views = self.recipe.views
        packed = self.pack(params, height, width).to(x.device, non_blocking=True)
        sizes = [6, 6, 3] + ([self.blur_size] if self.steps["blur"] else [])
        transforms, columns, masks, *kernels = packed.split(sizes, 1)
        jittered, gray, sol = masks.view(-1, 3, 1, 1).bool().unbind(1)

        images = x.expand(views, *x.shape).reshape(views * n, *x.shape[1:])
        out = resized_crop(images.float().div_(255), transforms, self.crop_size)
        if self.steps["jitter"]:
            chunks = zip(out.split(n), columns.split(n), params.orders, strict=True)
            out = select(jittered, torch.cat([colour_jitter(*chunk) for chunk in chunks]), out)
        if self.steps["gray"]:
            out = select(gray, grayscale(out), out)  # broadcast over the channels
        if self.steps["blur"] and params.blur.any():  # a host tensor: no device read
            out = blur_rows(out, kernels[0], params.blur.nonzero().flatten().to(x.device, non_blocking=True))
        if self.steps["solarize"]:
            out = solarize(out, sol)
        return list(self.normalize(out).split(n))


class MultiViewAugment(BatchAugment):
    """Two (or more) independently augmented views of a uint8 batch, each with its own recipe (solo-learn's: random
    resized crop, colour jitter, grayscale, blur, solarization, flip)."""

    def __init__(self, view_cfgs, crop_size: int, mean, std) -> None:
        super().__init__(Recipe.from_views(view_cfgs), crop_size, mean, std)


class LinearTrainAugment(BatchAugment):
    """Linear-probe training: random resized crop (scale 0.08-1) and flip, as solo-learn's linear recipe."""

    def __init__(self, crop_size: int, mean, std) -> None:
        super().__init__(Recipe.crop_and_flip((0.08, 1.0)), crop_size, mean, std)

    def forward(self, x: Tensor, params: ViewParams | None = None) -> Tensor:
        return super().forward(x, params)[0]


class Normalize(nn.Module):
    """uint8 (or [0, 1] float) images to normalized float."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return (x - self.mean) / self.std


class EvalTransform(nn.Module):
    """Evaluation: center crop to ``crop_size`` (a no-op for CIFAR-size data) and normalize."""

    def __init__(self, crop_size: int, mean, std) -> None:
        super().__init__()
        self.crop_size = crop_size
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if (h, w) != (self.crop_size, self.crop_size):
            top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
            x = x[..., top : top + self.crop_size, left : left + self.crop_size]
        return self.normalize(x)
