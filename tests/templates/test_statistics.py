"""Unit checks of the statistics and the alignment: PCA against numpy's covariance, weights as
repetitions, and the generalised Procrustes analysis on known similarity motions."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def population():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 3)) * 10
    fields = rng.normal(size=(3, 40, 3))
    coef = rng.normal(size=(7, 3)) * np.array([5.0, 2.0, 0.5])
    return base + np.einsum("sk,knd->snd", coef, fields) + 0.01 * rng.normal(size=(7, 40, 3))


def test_pca_matches_numpy_covariance(population):
    from shapeot.templates import principal_modes

    s, n, _ = population.shape
    m = principal_modes(population, np.ones(s), np.ones(n), n_modes=10)
    assert m.n_modes == s - 1  # at most S - 1 non-trivial modes
    flat = population.reshape(s, -1)
    evals, evecs = np.linalg.eigh(np.cov(flat, rowvar=False, ddof=1) / n)  # per-vertex mean = uniform areas
    np.testing.assert_allclose(m.variances, evals[::-1][: s - 1], rtol=1e-8)
    for k in range(3):  # unit RMS norm: component = sqrt(N) * unit eigenvector, up to sign
        v = evecs[:, -1 - k] * np.sqrt(n)
        assert min(np.abs(m.components[k].ravel() - v).max(), np.abs(m.components[k].ravel() + v).max()) < 1e-6
    np.testing.assert_allclose(m.mean, population.mean(0))
    # All S - 1 modes reconstruct every subject exactly from its scores (mm).
    recon = m.mean + np.einsum("sk,knd->snd", m.scores, m.components)
    np.testing.assert_allclose(recon, population, atol=1e-9)
    np.testing.assert_allclose(m.explained_variance_ratio.sum(), 1.0)
    np.testing.assert_allclose(m.shape_at(0, 2.0) - m.mean, 2 * np.sqrt(m.variances[0]) * m.components[0])


def test_pca_weights_are_repetitions_and_areas_a_metric(population):
    from shapeot.templates import principal_modes

    s, n, _ = population.shape
    rng = np.random.default_rng(0)
    areas = rng.uniform(0.5, 2.0, n)
    repeated = np.concatenate([population[:1], population])
    a = principal_modes(repeated, np.ones(s + 1), areas, 4)
    b = principal_modes(population, np.r_[2.0, np.ones(s - 1)], areas, 4)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-9)
    np.testing.assert_allclose(np.abs(np.einsum("knd,knd->k", a.components, b.components)) / n,
                               np.abs(np.einsum("knd,knd->k", a.components, a.components)) / n, rtol=1e-6)
    np.testing.assert_allclose(a.explained_variance_ratio, b.explained_variance_ratio, rtol=1e-8)
    alpha = areas / areas.sum()
    gram = np.einsum("knd,lnd,n->kl", b.components, b.components, alpha)
    np.testing.assert_allclose(gram, np.eye(4), atol=1e-10)


@pytest.mark.slow
def test_procrustes_recovers_similarities(reference):
    """Copies of one surface under large known similarities (rotations of 40-170 degrees, scales
    0.8-1.25, translations of 50 mm), vertex order shuffled: after the robust alignment and the
    Procrustes rounds every copy lands on the same place, at the mean size."""
    from scipy.spatial.transform import Rotation

    from shapeot.core.progress import Progress
    from shapeot.shapes import Shape
    from shapeot.templates import InProcessExecutor, TemplateConfig
    from shapeot.templates.builder import _procrustes
    from shapeot.templates.procrustes import rms_radius
    from shapeot.templates.tasks import apply_matrix

    base = reference.decimate(600)
    rng = np.random.default_rng(1)
    truths, shapes = [], []
    for k, (angle, scale) in enumerate([(0, 1.0), (40, 0.8), (100, 1.25), (170, 1.1)]):
        m = np.eye(4)
        axis = Rotation.random(random_state=k).as_rotvec()
        m[:3, :3] = scale * Rotation.from_rotvec(np.deg2rad(angle) * axis / np.linalg.norm(axis)).as_matrix()
        m[:3, 3] = rng.normal(size=3) * 30
        perm = rng.permutation(base.n_points)
        shapes.append(Shape(apply_matrix(m, base.points)[perm], np.argsort(perm)[base.faces], name=f"copy{k}"))
        truths.append(m)
    w = np.full(4, 0.25)
    cfg = TemplateConfig(procrustes_starts=24, procrustes_iterations=3)
    history = []
    mats, medoid = _procrustes(shapes, shapes, w, cfg, InProcessExecutor(), Progress(None), [s.name for s in shapes],
                               history)
    # alignment o truth maps the base surface into the common frame: the same map for every copy.
    combined = [a @ t for a, t in zip(mats, truths)]
    pts = np.asarray(base.points)
    spread = max(np.abs(apply_matrix(c, pts) - apply_matrix(combined[0], pts)).max() for c in combined)
    size = rms_radius(base.points, base.weights)
    assert spread < 0.01 * size, spread
    mean_size = np.mean([rms_radius(s.points, s.weights) for s in shapes])
    framed = apply_matrix(combined[0], pts)
    assert abs(rms_radius(framed, base.weights) - mean_size) < 1e-6 * mean_size
    assert [h.stage for h in history] == ["procrustes"] * len(history) and history
