"""The 2D toy of the AVAE paper (Sec. 5.1): data, exact density, training, and Fig. 6's claim."""

import math

import pytest
import torch

from vaegan_lite.book import toy
from vaegan_lite.config import TOY_STEPS
from vaegan_lite.metrics import frechet_distance


def test_data_follow_the_papers_formula():
    x = toy.sample_data(5, torch.Generator().manual_seed(3))
    z1, z2, e1, e2 = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(x[:, 0], 3 * z1 + 0.1 * e1)
    assert torch.allclose(x[:, 1], torch.cos(3 * z1) + torch.tanh(3 * z2) + 0.1 * e2)


def test_log_density_matches_monte_carlo():
    """p(x) = E_z N(x; f(z), 0.1^2 I), estimated with a million draws of z."""
    g = torch.Generator().manual_seed(0)
    points = torch.tensor([[0.0, 2.0], [0.0, 1.0], [1.5, -1.2], [-4.0, 0.8], [2.0, 2.5]])
    z1, z2 = torch.randn(2, 1_000_000, generator=g, dtype=torch.float64)
    means = torch.stack([3 * z1, torch.cos(3 * z1) + torch.tanh(3 * z2)], 1)
    s2 = toy.NOISE**2
    for p, exact in zip(points.double(), toy.log_density(points), strict=True):
        lp = -0.5 * (p - means).pow(2).sum(1) / s2 - math.log(2 * math.pi * s2)
        mc = torch.logsumexp(lp, 0) - math.log(lp.numel())
        assert abs(float(mc) - float(exact)) < 0.05, (p, float(mc), float(exact))


def test_log_density_normalises_along_x2():
    """Integrated over x2 (a fine grid), p(x) leaves p(x1) = N(x1; 0, 9 + 0.1^2)."""
    x2 = torch.linspace(-3.5, 3.5, 1401)
    x = torch.stack([torch.full_like(x2, 1.3), x2], 1)
    p_x1 = toy.log_density(x).exp().sum() * (x2[1] - x2[0])
    expected = math.exp(-0.5 * 1.3**2 / 9.01) / math.sqrt(2 * math.pi * 9.01)
    assert abs(float(p_x1) / expected - 1) < 1e-3


def test_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g)
    b = torch.randn(20000, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5]) + 1.0
    # Diagonal covariances: ||m_a - m_b||^2 + sum (s_a - s_b)^2 = 3 + (0 + 1 + 0.25).
    assert abs(frechet_distance(a, b) - 4.25) < 0.1
    assert abs(frechet_distance(a, a)) < 1e-6


@pytest.mark.parametrize("xi", [0, 1])  # two tests: each trains for half a minute
def test_avae_lands_on_the_data(xi):
    """Fig. 6's claim, in numbers: AVAE's reconstructions lie where the data are, the VAE's between
    the two branches. With xi, AVAE's reconstructions are the likelier ones for nearly every point
    and on average; the deterministic G(z) is one continuous curve that has to cross between the
    branches, so there the claim holds for most points (and the median), not for all.
    (How long the toy takes: benchmarks/toy_speed.py.)"""
    r = toy.train_toy(xi_dim=xi, steps=TOY_STEPS["cpu"])
    x = toy.sample_data(1000, torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(0)
    vae = toy.log_density(r.model.vae_reconstruct(x))
    avae = toy.log_density(r.model.reconstruct(x, generator=g))
    more_likely = (avae > vae).float().mean()
    assert avae.median() > vae.median()
    assert more_likely > (0.85 if xi else 0.6), more_likely
    if xi:
        assert avae.mean() > vae.mean() + 0.5
