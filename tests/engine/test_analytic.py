"""Analytic oracles: translations, finite differences of the value, the transport plan's algebra."""
from __future__ import annotations

import pytest
import torch

from shapeot.ot import solve

from .clouds import random_weights, shells


@pytest.mark.parametrize("blur", [0.01, 0.05, 0.2])
def test_translation_costs_half_squared_shift_and_maps_by_the_shift(blur):
    x, _ = shells(600, seed=3)
    t = torch.tensor([0.2, -0.1, 0.35], dtype=torch.float64)
    x1 = x.clone().requires_grad_()
    res = solve(x1, x + t, blur=blur, scaling=0.9, tol=1e-6)
    assert res.value.item() == pytest.approx(float(t @ t) / 2, rel=1e-6)
    # Debiased balanced S_eps of a translate is |t|^2/2 exactly, and its gradient is -t/N per point.
    (gx,) = torch.autograd.grad(res.value, [x1])
    assert torch.allclose(gx, (-t / 600).expand_as(gx), atol=1e-7)
    moved = res.plan.barycentric_map() - x
    assert torch.allclose(moved.mean(0), t, atol=1e-6)  # exact marginals: the mean moves by t
    if blur <= 0.05:  # the blurred plan only averages over partners within a few blurs
        assert float((moved - t).norm(dim=1).max()) <= blur


def _fd_check(fun, v, direction, h=1e-5):
    v1 = v.clone().requires_grad_()
    (g,) = torch.autograd.grad(fun(v1), [v1])
    fd = (float(fun(v + h * direction)) - float(fun(v - h * direction))) / (2 * h)
    return float((g * direction).sum()), fd


@pytest.mark.slow
@pytest.mark.parametrize("reach", [None, 0.3])
def test_gradient_in_points_is_the_derivative_of_the_value(reach):
    x, y = shells(200, 150, seed=5)
    d = torch.randn_like(x)

    def fun(xx):
        return solve(xx, y, blur=0.05, reach=reach, scaling=0.9, tol=1e-10, max_iter=5000).value

    ana, fd = _fd_check(fun, x, d)
    assert ana == pytest.approx(fd, rel=1e-4)


def test_gradient_in_weights_unbalanced_is_the_derivative_of_the_value():
    x, y = shells(150, 120, seed=6)
    a, b = random_weights(150, 1), random_weights(120, 2) * 1.3  # unequal masses: unbalanced
    d = torch.randn(150, dtype=torch.float64)

    def fun(aa):
        return solve(x, y, aa, b, blur=0.05, reach=0.4, scaling=0.9, tol=1e-10, max_iter=5000).value

    ana, fd = _fd_check(fun, a, d, h=1e-6)
    assert ana == pytest.approx(fd, rel=1e-4)


def test_plan_operators_agree_with_the_dense_plan():
    x, y = shells(300, 250, seed=8)
    a, b = random_weights(300, 3), random_weights(250, 4)
    res = solve(x, y, a, b, blur=0.05, scaling=0.9, tol=1e-8)
    p = res.plan.dense()  # (N, M)
    assert torch.allclose(p.sum(1), a, atol=1e-8) and torch.allclose(p.sum(0), b, atol=1e-7)
    assert res.marginal_error < 1e-6
    v = torch.randn(250, 4, dtype=torch.float64)
    assert torch.allclose(res.plan.matvec(v), p @ v, rtol=1e-10, atol=1e-14)
    assert torch.allclose(res.plan.matvec(v[:, 0]), p @ v[:, 0], rtol=1e-10, atol=1e-14)
    u = torch.randn(300, 2, dtype=torch.float64)
    assert torch.allclose(res.plan.T.matvec(u), p.T @ u, rtol=1e-10, atol=1e-14)
    bary = (p @ y) / p.sum(1, keepdim=True)
    assert torch.allclose(res.plan.barycentric_map(), bary, atol=1e-10)
    idx, mass = res.plan.top_k(3)
    ref_mass, ref_idx = p.topk(3, dim=1)
    assert torch.equal(idx, ref_idx) and torch.allclose(mass, ref_mass, rtol=1e-10)


def test_non_debiased_value_is_the_primal_entropic_cost():
    """OT_eps = <P, C> + eps KL(P | a x b) at the optimum (balanced, converged)."""
    x, y = shells(200, 180, seed=9)
    res = solve(x, y, blur=0.1, scaling=0.9, debias=False, tol=1e-12, max_iter=5000)
    p = res.plan.dense()
    a = torch.full((200,), 1 / 200, dtype=torch.float64)
    b = torch.full((180,), 1 / 180, dtype=torch.float64)
    c = torch.cdist(x, y) ** 2 / 2
    primal = (p * c).sum() + res.eps * (p * (p / (a[:, None] * b[None, :])).log() - p + a[:, None] * b[None, :]).sum()
    assert float(res.value) == pytest.approx(float(primal), rel=1e-8)


def test_any_dimension():
    x, y = shells(300, 200, d=7, seed=10)
    res = solve(x, y, blur=0.05)
    assert res.value.ndim == 0 and float(res.value) > 0
    assert res.plan.barycentric_map().shape == (300, 7)
