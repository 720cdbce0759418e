"""Sinkhorn divergences converge to exact OT: compare with POT's network-simplex ``ot.emd2``."""
from __future__ import annotations

import ot as pot
import pytest
import torch

from shapeot.ot import solve

from .clouds import random_weights, shells


def exact(x, y, a, b) -> float:
    cost = pot.dist(x.numpy(), y.numpy()) / 2  # |x - y|^2 / 2, the engine's convention
    return float(pot.emd2(a.numpy(), b.numpy(), cost, numItermax=10_000_000))


def blobs(n, m, d, seed):
    """Uniform points in the unit cube against a Gaussian blob: two full-dimensional measures."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    y = 0.15 * torch.randn(m, d, generator=g, dtype=torch.float64) + 0.6
    return x, y


# Shells sampled along curves with blur ~ spacing converge more slowly (README, "Accuracy").
@pytest.mark.parametrize("n, m, d, seed, weighted, cloud", [
    (300, 400, 2, 0, False, blobs),
    (300, 400, 2, 1, True, blobs),
    (1000, 800, 3, 2, True, blobs),
    (2000, 2000, 2, 3, True, blobs),
    (2000, 2000, 3, 4, False, shells),
])
@pytest.mark.slow
@pytest.mark.parametrize("updates", ["symmetric", "alternating"])
def test_value_matches_exact_ot(n, m, d, seed, weighted, cloud, updates):
    x, y = cloud(n, m, d=d, seed=seed)
    a = random_weights(n, seed) if weighted else torch.full((n,), 1.0 / n, dtype=torch.float64)
    b = random_weights(m, seed + 100) if weighted else torch.full((m,), 1.0 / m, dtype=torch.float64)
    ref = exact(x, y, a, b)
    diam = float((torch.cat([x, y]).amax(0) - torch.cat([x, y]).amin(0)).norm())
    # The value after the schedule alone (tol=None), GeomLoss's stopping rule: what the README's
    # accuracy table states.
    res = solve(x, y, a, b, blur=0.0025 * diam, scaling=0.9, updates=updates, tol=None)
    assert abs(float(res.value) - ref) <= 0.01 * ref, (float(res.value), ref)


def test_float32_default_and_value_close_to_exact():
    x, y = shells(800, seed=4)
    uniform = torch.full((800,), 1 / 800, dtype=torch.float64)
    ref = exact(x, y, uniform, uniform)
    res = solve(x.float(), y.float(), scaling=0.9)  # default blur: 1 % of the diameter, default tol
    assert res.value.dtype == torch.float32 and res.f.dtype == torch.float32
    assert abs(float(res.value) - ref) <= 0.03 * ref
    assert res.info["relative_marginal_error"] <= 0.05  # the default tolerance
