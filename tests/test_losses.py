import math

import pytest
import torch

from solo_ossl.losses import (
    barlow_loss_func,
    barlow_loss_per_group,
    simclr_loss_func,
    simclr_loss_per_sample,
    vicreg_loss_func,
    vicreg_loss_per_group,
)


def naive_nt_xent(z1, z2, t):
    """Per-sample l(i->i') + l(i'->i) with explicit loops over the 2B views."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n, b = z.size(0), z1.size(0)
    per_view = []
    for i in range(n):
        j = (i + b) % n
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        per_view.append(-(float(z[i] @ z[j]) / t - math.log(denom)))
    return torch.tensor([per_view[i] + per_view[i + b] for i in range(b)], dtype=torch.float64)


def naive_barlow(z1, z2, lamb, scale):
    z1, z2 = z1.double(), z2.double()
    n, d = z1.shape
    z1n = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    z2n = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = float(sum(z1n[b, i] * z2n[b, j] for b in range(n)) / n)
            loss += (c - 1) ** 2 if i == j else lamb * c**2
    return scale * loss


def naive_vicreg(z1, z2, sim, var, cov):
    """VICReg as defined: mse; mean hinge of the unbiased std (+1e-4 under the root); off-diagonal covariance
    entries (centred, / (N - 1)) squared and summed, over D; element by element."""
    z1, z2 = z1.double(), z2.double()
    n, d = z1.shape
    invariance = sum(float(z1[b, i] - z2[b, i]) ** 2 for b in range(n) for i in range(d)) / (n * d)

    def variance(z):
        return sum(max(0.0, 1 - math.sqrt(float(z[:, i].var(unbiased=True)) + 1e-4)) for i in range(d)) / d

    def covariance(z):
        zc = z - z.mean(0)
        total = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    total += (float(sum(zc[b, i] * zc[b, j] for b in range(n))) / (n - 1)) ** 2
        return total / d

    return sim * invariance + var * (variance(z1) + variance(z2)) + cov * (covariance(z1) + covariance(z2))


@pytest.fixture
def views():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 8, generator=g), torch.randn(32, 8, generator=g)


def test_simclr_per_sample_matches_naive(views):
    z1, z2 = views
    got = simclr_loss_per_sample(z1, z2, 0.2)
    assert got.shape == (32,)
    torch.testing.assert_close(got.double(), naive_nt_xent(z1, z2, 0.2), rtol=1e-4, atol=1e-4)


def test_simclr_per_sample_mean_is_batch_loss(views):
    z1, z2 = views
    idx = torch.arange(32).repeat(2)
    batch = simclr_loss_func(torch.cat([z1, z2]), idx, 0.2)
    torch.testing.assert_close(simclr_loss_per_sample(z1, z2, 0.2).mean() / 2, batch)
    torch.testing.assert_close(batch.double(), naive_nt_xent(z1, z2, 0.2).mean() / 2, rtol=1e-4, atol=1e-4)


def test_barlow_matches_naive(views):
    z1, z2 = views
    got = barlow_loss_func(z1, z2, lamb=0.0051, scale_loss=0.1)
    assert abs(got.item() - naive_barlow(z1, z2, 0.0051, 0.1)) < 1e-4


def test_barlow_per_group_matches_loop(views):
    z1, z2 = views
    got = barlow_loss_per_group(z1, z2, group_size=8, lamb=0.0051, scale_loss=0.1)
    assert got.shape == (4,)
    for g in range(4):
        rows = slice(8 * g, 8 * g + 8)
        assert abs(got[g].item() - naive_barlow(z1[rows], z2[rows], 0.0051, 0.1)) < 1e-4
        torch.testing.assert_close(got[g], barlow_loss_func(z1[rows], z2[rows]))


def test_barlow_per_group_through_gram_matches_the_correlation_matrix():
    # Groups much smaller than the projection (4 rows, D = 64): the Gram-matrix form against the D x D one.
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(24, 64, generator=g), torch.randn(24, 64, generator=g)
    got = barlow_loss_per_group(z1, z2, group_size=4, lamb=0.0051, scale_loss=0.1)
    for i in range(6):
        rows = slice(4 * i, 4 * i + 4)
        torch.testing.assert_close(got[i], barlow_loss_func(z1[rows], z2[rows]), rtol=1e-5, atol=1e-5)
        assert abs(got[i].item() - naive_barlow(z1[rows], z2[rows], 0.0051, 0.1)) < 1e-3


def test_barlow_per_group_rejects_uneven_batch(views):
    z1, z2 = views
    with pytest.raises(ValueError, match="not divisible by group_size"):
        barlow_loss_per_group(z1[:30], z2[:30], group_size=16)


def test_vicreg_matches_naive(views):
    z1, z2 = views
    got = vicreg_loss_func(0.3 * z1, 0.3 * z2 + 0.1 * z1, 25.0, 25.0, 1.0)  # std below 1: the hinge is active
    torch.testing.assert_close(
        got.double(),
        torch.tensor(naive_vicreg(0.3 * z1, 0.3 * z2 + 0.1 * z1, 25.0, 25.0, 1.0), dtype=torch.float64),
        rtol=1e-4,
        atol=1e-4,
    )
    weighted = vicreg_loss_func(z1, z2, 2.0, 3.0, 0.5)
    assert abs(weighted.item() - naive_vicreg(z1, z2, 2.0, 3.0, 0.5)) < 1e-3


def test_vicreg_per_group_matches_loop(views):
    z1, z2 = views
    got = vicreg_loss_per_group(z1, z2, group_size=8)
    assert got.shape == (4,)
    for g in range(4):
        rows = slice(8 * g, 8 * g + 8)
        torch.testing.assert_close(got[g], vicreg_loss_func(z1[rows], z2[rows]), rtol=1e-5, atol=1e-4)
        assert abs(got[g].item() - naive_vicreg(z1[rows], z2[rows], 25.0, 25.0, 1.0)) < 1e-3
    with pytest.raises(ValueError, match="VICReg scores whole groups"):
        vicreg_loss_per_group(z1[:30], z2[:30], group_size=16)


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b: simclr_loss_per_sample(a, b, 0.2),
        lambda a, b: simclr_loss_func(torch.cat([a, b]), torch.arange(a.size(0)).repeat(2), 0.2),
        lambda a, b: barlow_loss_func(a, b),
        lambda a, b: barlow_loss_per_group(a, b, 16),
        lambda a, b: vicreg_loss_func(a, b),
        lambda a, b: vicreg_loss_per_group(a, b, 16),
    ],
)
def test_losses_under_bf16_autocast_are_fp32_and_close(views, loss):
    z1, z2 = views
    lin = torch.nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = lin(z1), lin(z2)
        assert a.dtype == torch.bfloat16
        low = loss(a, b)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, loss(a.float(), b.float()))
    # The bf16 projections differ from fp32 ones only by rounding; the loss stays close.
    torch.testing.assert_close(low, loss(lin(z1), lin(z2)).detach(), rtol=0.05, atol=0.05)
