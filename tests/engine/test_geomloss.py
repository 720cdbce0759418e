"""Same values and gradients as GeomLoss's SamplesLoss (the reference implementation of S_eps)."""
from __future__ import annotations

import pytest
import torch

geomloss = pytest.importorskip("geomloss")

from shapeot.ot import solve  # noqa: E402

from .clouds import random_weights, shells  # noqa: E402


@pytest.mark.parametrize("reach", [None, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_gradient_match_geomloss(reach, weighted):
    n, m = 400, 300
    x, y = shells(n, m, seed=7)
    a = random_weights(n, 1) if weighted else torch.full((n,), 1.0 / n, dtype=torch.float64)
    b = random_weights(m, 2) if weighted else torch.full((m,), 1.0 / m, dtype=torch.float64)
    blur, scaling = 0.02, 0.95
    x1, y1 = x.clone().requires_grad_(), y.clone().requires_grad_()
    loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, reach=reach, scaling=scaling, debias=True,
                                backend="tensorized")
    ref = loss(a, x1, b, y1)
    gx_ref, gy_ref = torch.autograd.grad(ref, [x1, y1])

    x2, y2 = x.clone().requires_grad_(), y.clone().requires_grad_()
    res = solve(x2, y2, a, b, blur=blur, reach=reach, scaling=scaling, tol=None)  # GeomLoss's stopping rule
    gx, gy = torch.autograd.grad(res.value, [x2, y2])

    assert abs(float(res.value) - float(ref)) <= 1e-3 * abs(float(ref))
    # GeomLoss's unbalanced gradient carries a factor (rho + eps/2)/(rho + eps) (its UnbalancedWeight
    # defines backward() on an nn.Module, which autograd never calls): 1 - 8e-4 here, inside 1e-3.
    for g, g_ref in ((gx, gx_ref), (gy, gy_ref)):
        assert float((g - g_ref).norm() / g_ref.norm()) <= 1e-3
