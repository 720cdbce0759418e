"""Deformation models against analytic maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shapeot.deform import LDDMM, Composition, KernelSpline, LinearMap, fit_linear, smooth_displacement
from shapeot.deform.lddmm import hamiltonian, shoot
from shapeot.metrics import jacobian_determinants


def _rotation(seed: int, angle: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = rng.standard_normal(3)
    k /= np.linalg.norm(k)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


@pytest.mark.parametrize("kind", ["rigid", "similarity", "affine"])
def test_fit_linear_recovers_exact_maps(kind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 3)) * [30.0, 20.0, 10.0]
    a = _rotation(1, 2.0)  # 115 degrees: far from the identity
    if kind == "similarity":
        a = 1.7 * a
    elif kind == "affine":
        a = a @ np.array([[1.3, 0.2, 0.0], [0.0, 0.8, 0.1], [0.3, 0.0, 1.1]])
    t = np.array([5.0, -12.0, 3.0])
    w = rng.uniform(0.1, 1.0, 200)
    m = fit_linear(x, x @ a.T + t, w, kind)
    np.testing.assert_allclose(m.matrix[:3, :3], a, atol=1e-9)
    np.testing.assert_allclose(m.matrix[:3, 3], t, atol=1e-8)


def test_rigid_fit_never_reflects():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3))
    mirror = x * [-1.0, 1.0, 1.0]
    m = fit_linear(x, mirror, kind="rigid")
    assert np.linalg.det(m.matrix[:3, :3]) == pytest.approx(1.0)


def test_weights_ignore_zero_weight_outliers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    y = x + [1.0, 2.0, 3.0]
    y[:5] += 100.0  # outliers with zero weight must not move the fit
    w = np.ones(50)
    w[:5] = 0.0
    np.testing.assert_allclose(fit_linear(x, y, w, "rigid").matrix[:3, 3], [1.0, 2.0, 3.0], atol=1e-9)


def test_linear_map_compose_inverse_and_jacobian():
    m = LinearMap(np.diag([2.0, 3.0, 0.5, 1.0]))
    p = np.random.default_rng(0).standard_normal((10, 3))
    np.testing.assert_allclose(m.inverse().apply(m.apply(p)), p, atol=1e-12)
    np.testing.assert_allclose(jacobian_determinants(m, p, 1e-3), 3.0, rtol=1e-9)
    shift = LinearMap(np.block([[np.eye(3), np.ones((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
    np.testing.assert_allclose(Composition((m, shift)).apply(p), m.apply(p) + 1.0)
    np.testing.assert_allclose(shift.compose(m).apply(p), m.apply(p) + 1.0)


def _kernel_mass(q, c, m, s):
    """D(q) = sum_k m_k exp(-|q - c_k|^2 / 2 s^2), by plain NumPy."""
    return (m * np.exp(-((q[:, None] - c[None]) ** 2).sum(-1) / (2 * s * s))).sum(1)


def test_kernel_smoothing_reproduces_a_translation_and_fades_far_away():
    """A constant displacement t is reproduced as t D / (D + delta), delta = 1e-2 mean(m): within
    ~1e-4 on the data, and fading to 0 several widths away (no extrapolation)."""
    from shapeot.deform.spline import DELTA

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3))
    m = rng.uniform(0.5, 1.0, 300)
    t = np.array([0.5, -1.0, 2.0])
    spline = smooth_displacement(x, x + t, m, width=0.7)
    q = rng.standard_normal((20, 3)) * 0.5
    d = _kernel_mass(q, x, m, 0.7)[:, None]
    np.testing.assert_allclose(spline.apply(q), q + t * d / (d + DELTA * m.mean()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(spline.apply(q), q + t, atol=1e-3)
    far = np.array([[12.0, 0.0, 0.0], [0.0, -15.0, 0.0]])  # ~6 widths beyond the cloud's edge
    assert np.abs(spline.apply(far) - far).max() < 1e-3 * np.abs(t).max()


def test_kernel_smoothing_ignores_massless_matches():
    x = np.array([[0.0, 0, 0], [0.1, 0, 0]])
    spline = smooth_displacement(x, x + [[1.0, 0, 0], [50.0, 0, 0]], np.array([1.0, 0.0]), width=1.0)
    np.testing.assert_allclose(spline.apply(x), x + [1.0, 0, 0], atol=2e-2)  # only the 1 % shrink


def test_rkhs_spline_energy_is_the_kernel_norm():
    c = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    v = np.array([[1.0, 0, 0], [0.0, 1, 0]])
    s = KernelSpline(c, v, 1.0)
    assert s.energy() == pytest.approx(2.0)  # orthogonal vectors: the cross terms vanish
    np.testing.assert_allclose(s.apply(c[:1]), [[1.0, np.exp(-0.5), 0.0]])


def test_lddmm_zero_momenta_is_identity_and_energy_is_conserved():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((30, 3))
    x = rng.standard_normal((50, 3))
    assert np.allclose(LDDMM(q, np.zeros_like(q), 1.0).apply(x), x)
    p = torch.as_tensor(rng.standard_normal((30, 3)) * 0.05)
    qt = torch.as_tensor(q)
    q1, p1, _ = shoot(qt, p, 1.0, 40)
    h0, h1 = float(hamiltonian(qt, p, 1.0)), float(hamiltonian(q1, p1, 1.0))
    assert h1 == pytest.approx(h0, rel=1e-3)  # H is a first integral of the geodesic equations


def test_lddmm_is_invertible_where_a_spline_folds():
    """Two opposite pushes that cross: a displacement field folds space, the flow does not."""
    q = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    p = np.array([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    g = np.stack(np.meshgrid(*[np.linspace(-1.5, 1.5, 9)] * 3), -1).reshape(-1, 3)
    spline = KernelSpline(q, p, 0.5)
    flow = LDDMM(q, p, 0.5, n_steps=40)
    assert jacobian_determinants(spline, g, 1e-4).min() < 0
    assert jacobian_determinants(flow, g, 1e-4).min() > 0


def test_max_strain_of_one_kernel_is_analytic():
    """v(x) = a exp(-|x - c|^2 / 2 s^2): |Dv(x)|_2 = |a| r e^(-r^2 / 2 s^2) / s^2 at r = |x - c|,
    largest at r = s: |a| e^(-1/2) / s."""
    from shapeot.deform import max_strain

    c, a, s = np.array([[1.0, 2.0, 3.0]]), np.array([[0.3, -0.4, 1.2]]), 0.7
    d = np.random.default_rng(0).normal(size=(500, 3))
    on_sphere = c + s * d / np.linalg.norm(d, axis=1, keepdims=True)
    got = max_strain(KernelSpline(c, a, s), on_sphere)
    assert got == pytest.approx(np.linalg.norm(a) * np.exp(-0.5) / s, rel=1e-5)


def test_a_folding_spline_step_is_split_into_injective_euler_steps():
    """Two opposite pushes that cross (strain ~3): one step x + v(x) folds space; the
    non-rigid stage's guard applies v / n n times (the flow of v), which does not."""
    from shapeot.deform import max_strain
    from shapeot.registration.nonrigid import MAX_STEP_STRAIN, injective_steps

    q = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    p = np.array([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    g = np.stack(np.meshgrid(*[np.linspace(-1.5, 1.5, 9)] * 3), -1).reshape(-1, 3)
    spline = KernelSpline(q, p, 0.5)
    step, n, strain = injective_steps(spline, g)
    assert jacobian_determinants(spline, g, 1e-4).min() < 0
    assert strain > 1 and n == int(np.ceil(strain / MAX_STEP_STRAIN))
    assert max_strain(step, g) <= MAX_STEP_STRAIN + 1e-9
    flow = Composition((step,) * n)
    assert jacobian_determinants(flow, g, 1e-4).min() > 0
    gentle = KernelSpline(q, 0.05 * p, 0.5)  # strain ~0.1: left as one step
    assert injective_steps(gentle, g)[1] == 1
