"""The batched augmentation (solo_ossl/data/augment.py) against the kornia pipeline it replaced, which stays here as
the reference: for fixed parameters every op and the whole recipe give kornia's pixels within 2e-5 (bilinear
resampling and the closed-form hue round differently), the drawn parameters have kornia's distributions
(two-sample KS per parameter, a binomial check per coin), and the op count does not grow with the batch."""

import math

import kornia.augmentation as K
import kornia.color
import kornia.enhance
import kornia.filters
import pytest
import torch
from omegaconf import OmegaConf
from scipy import stats

from solo_ossl.args import load_config
from solo_ossl.args.schema import ViewAugmentConfig
from solo_ossl.data import augment as A
from solo_ossl.utils.op_count import count_aten_ops

from .augment_reference import kornia_view, params_of

TOLERANCE = 2e-5


def recipe_views():
    """Barlow Twins' two CIFAR views (CaSSLe's: no blur at 32 px; solarization in the second)."""
    return list(load_config(["--config-name", "online/embedded/barlow_rals"]).data.augmentations)


def every_op_views():
    """Two views with every op on (ImageNet-100's recipe blurs both, with p 1.0 and 0.1)."""
    blur = dict(gray_scale_prob=0.3, gaussian_prob=0.6, solarization_prob=0.3)
    return [OmegaConf.structured(ViewAugmentConfig(**blur)), OmegaConf.structured(ViewAugmentConfig(gaussian_prob=0.1))]


def real_like_images(n: int, size: int = 32) -> torch.Tensor:
    """Smooth colour images with flat grey areas and saturated corners (hue's edge cases), as uint8."""
    torch.manual_seed(1)
    low = torch.rand(n, 3, 4, 4)
    images = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    images[:, :, : size // 4, : size // 4] = images[:, :1, : size // 4, : size // 4]  # grey patch
    images[:, :, -4:, -4:] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # pure red
    return (images * 255).round().to(torch.uint8)


# ---- whole recipe -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("view", ["cifar-1", "cifar-2", "all-ops"])
@pytest.mark.parametrize("crop_size", [32, 24])
def test_the_recipe_gives_kornias_pixels_for_kornias_parameters(view, crop_size):
    cfg = {"cifar-1": recipe_views()[0], "cifar-2": recipe_views()[1], "all-ops": every_op_views()[0]}[view]
    x = real_like_images(96)
    ops = kornia_view(cfg, crop_size)
    torch.manual_seed(crop_size)
    reference = ops(x.float() / 255)
    ours = A.BatchAugment(A.Recipe.from_views([cfg]), crop_size, (0.0,) * 3, (1.0,) * 3)
    (out,) = ours(x, params_of(ops))
    assert out.shape == reference.shape == (96, 3, crop_size, crop_size)
    assert (out - reference).abs().max() < TOLERANCE


# ---- op by op -----------------------------------------------------------------------------------------------
def test_crop_and_flip_is_kornias_resample_crop_then_flip():
    torch.manual_seed(0)
    crop = K.RandomResizedCrop((32, 32), scale=(0.08, 1.0), cropping_mode="resample")
    x = torch.rand(64, 3, 40, 36)
    expected = crop(x)
    src = crop._params["src"]
    boxes = torch.cat([src[:, 0], src[:, 2] - src[:, 0] + 1], 1)
    flip = torch.arange(64) % 2 == 1
    expected = torch.where(flip.view(-1, 1, 1, 1), expected.flip(-1), expected)
    ours = A.resized_crop(x, A.crop_transforms(boxes, flip, 40, 36), 32)
    assert (ours - expected).abs().max() < TOLERANCE


@pytest.mark.parametrize(
    "ours, theirs, factor",
    [
        (A.adjust_brightness, kornia.enhance.adjust_brightness_accumulative, lambda: torch.rand(64) * 0.8 + 0.6),
        (A.adjust_contrast, kornia.enhance.adjust_contrast_with_mean_subtraction, lambda: torch.rand(64) * 0.8 + 0.6),
        (A.adjust_saturation, kornia.enhance.adjust_saturation_with_gray_subtraction, lambda: torch.rand(64) + 0.5),
    ],
    ids=["brightness", "contrast", "saturation"],
)
def test_blend_steps_are_kornias(ours, theirs, factor):
    x = real_like_images(64).float() / 255
    torch.manual_seed(0)
    f = factor()
    assert (ours(x, f) - theirs(x, f)).abs().max() < TOLERANCE


def test_hue_rotation_in_closed_form_is_kornias_hsv_round_trip():
    x = torch.cat([real_like_images(64).float() / 255, torch.rand(64, 3, 32, 32)])
    torch.manual_seed(0)
    shift = torch.rand(128) - 0.5  # turns, the whole range
    phase = A.jitter_columns(torch.stack([torch.ones(128)] * 3 + [shift], 1), torch.ones(128, dtype=torch.bool))
    expected = kornia.enhance.adjust_hue(x, shift * 2 * math.pi)
    assert (A.adjust_hue(x, phase[:, 3:]) - expected).abs().max() < TOLERANCE


def test_grayscale_blur_and_solarize_are_kornias():
    x = real_like_images(64).float() / 255
    assert (A.grayscale(x) - kornia.color.rgb_to_grayscale(x)).abs().max() < TOLERANCE
    torch.manual_seed(0)
    sigma, blur = torch.rand(64) * 1.9 + 0.1, torch.arange(64) % 3 > 0
    for size in (3, 7):
        ours = A.gaussian_blur(x, A.gaussian_kernels(sigma, blur, size))
        expected = kornia.filters.gaussian_blur2d(x, (size, size), sigma[:, None].expand(-1, 2), "reflect")
        assert (ours[blur] - expected[blur]).abs().max() < TOLERANCE
        assert torch.equal(ours[~blur], x[~blur])  # the unit impulse leaves the others bit-exact
    mask = torch.arange(64) % 2 == 0
    expected = torch.where(mask.view(-1, 1, 1, 1), kornia.enhance.solarize(x, 0.5), x)
    assert torch.equal(A.solarize(x, mask), expected)


# ---- distributions --------------------------------------------------------------------------------------------
def test_drawn_parameters_have_kornias_distributions():
    """Two-sample KS per continuous (or integer) parameter, 6,000 draws each, and each coin's rate within 4
    binomial standard deviations of its probability; the jitter order is one of the 24 permutations per view and
    call, uniformly (chi-square)."""
    cfg = OmegaConf.structured(ViewAugmentConfig(gray_scale_prob=0.3, gaussian_prob=0.6, solarization_prob=0.2))
    n, shape = 6000, (6000, 3, 32, 32)
    torch.manual_seed(0)
    ours = A.draw_params(A.Recipe.from_views([cfg]), n, 32, 32)
    ops = kornia_view(cfg, 32)
    theirs = {}
    for op in ops:
        theirs.update({type(op).__name__ + "." + k: v for k, v in op.forward_parameters(shape).items()})
    src = theirs["RandomResizedCrop.src"]
    pairs = {
        "x0": (ours.boxes[:, 0], src[:, 0, 0]),
        "y0": (ours.boxes[:, 1], src[:, 0, 1]),
        "width": (ours.boxes[:, 2], src[:, 1, 0] - src[:, 0, 0] + 1),
        "height": (ours.boxes[:, 3], src[:, 2, 1] - src[:, 0, 1] + 1),
        "sigma": (ours.sigma, theirs["RandomGaussianBlur.sigma"]),
    }
    for i, name in enumerate(A.JITTER_STEPS):
        pairs[name] = (ours.factors[:, i], theirs[f"ColorJitter.{name}_factor"])
    for name, (a, b) in pairs.items():
        p = stats.ks_2samp(a.numpy(), b.numpy()).pvalue
        assert p > 0.01, f"{name}: KS p = {p:.2g}"
    coins = {"flip": 0.5, "jitter": 0.8, "gray": 0.3, "blur": 0.6, "solarize": 0.2}
    for name, prob in coins.items():
        rate = getattr(ours, name).float().mean().item()
        assert abs(rate - prob) < 4 * math.sqrt(prob * (1 - prob) / n), name
    orders = [A.draw_params(A.Recipe.from_views([cfg] * 2), 1, 32, 32).orders for _ in range(1200)]
    counts = torch.unique(torch.tensor(orders).view(-1, 4), dim=0, return_counts=True)[1]
    assert len(counts) == 24 and stats.chisquare(counts.numpy()).pvalue > 0.01


# ---- the op budget --------------------------------------------------------------------------------------------
def test_a_two_view_call_dispatches_a_fixed_small_number_of_ops():
    """Issue 42's CPU proxy for GPU launches: at most 200 aten ops per two-view call, the same at 128 and 384
    images (benchmarks/augment_ops.py measures it with the timings)."""
    for views in (recipe_views(), every_op_views()):
        augment = A.MultiViewAugment(views, 32, (0.5,) * 3, (0.25,) * 3)
        counts = []
        for n in (128, 384):
            x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
            augment(x)
            counts.append(count_aten_ops(lambda x=x, augment=augment: augment(x)))
        assert counts[0] == counts[1] <= 200, counts


def test_an_op_no_view_uses_is_left_out_and_the_linear_recipe_is_crop_and_flip():
    views = [OmegaConf.structured(ViewAugmentConfig())] * 2  # no blur, no solarization
    full = count_aten_ops(lambda: A.MultiViewAugment(recipe_views(), 32, (0.0,) * 3, (1.0,) * 3)(real_like_images(8)))
    lean = count_aten_ops(lambda: A.MultiViewAugment(views, 32, (0.0,) * 3, (1.0,) * 3)(real_like_images(8)))
    assert lean < full
    linear = A.LinearTrainAugment(32, (0.0,) * 3, (1.0,) * 3)
    x = real_like_images(64)
    torch.manual_seed(0)
    out = linear(x)
    torch.manual_seed(0)
    params = linear.draw(64, 32, 32)
    crop = A.resized_crop(x.float() / 255, A.crop_transforms(params.boxes, params.flip, 32, 32), 32)
    assert torch.equal(out, crop)
    assert not params.jitter.any() and not params.gray.any() and 0.35 < params.flip.float().mean() < 0.65


def test_views_are_float32_under_a_bf16_run():
    """The augmentation runs in float32 inside a bf16 autocast region (a training step): the sampling grid is a
    matmul, and in bf16 it moved the views by up to 0.5 (normalized units)."""
    augment = A.MultiViewAugment(every_op_views(), 32, (0.5,) * 3, (0.25,) * 3)
    x = real_like_images(32)
    torch.manual_seed(0)
    params = augment.draw(32, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = augment(x, params)
    assert all(torch.equal(a, b) for a, b in zip(augment(x, params), mixed, strict=True))
