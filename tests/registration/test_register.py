"""The registration pipeline on a real brain surface with a known smooth warp (ground truth).

The surface is the fsaverage5 pial surface decimated to ~2000 vertices (mean edge ~7 mm, against
3.1 mm at full resolution), so the bounds here are those of the coarser mesh; the full-size
goals (0.5 mm / 1.0 mm on 10k vertices) are measured by benchmarks/register.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from shapeot.core.errors import Cancelled
from shapeot.registration import Registration, RegistrationConfig, register
from shapeot.shapes.synthetic import random_rigid

from .conftest import shuffled


def _errors(reg: Registration, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(reg.warped.points - truth, axis=1)


@pytest.fixture(scope="module")
def same_reg(warped_same):
    source, target, truth = warped_same
    lm = np.arange(0, source.n_points, 97)  # landmarks: some source vertices and their true images
    calls = []
    reg = register(source, target, "nonrigid", progress=lambda f, m: calls.append((f, m)),
                   landmarks=(source.points[lm], truth[lm]))
    return reg, truth, calls, lm


@pytest.mark.slow
def test_nonrigid_same_vertices_recovers_the_known_warp(same_reg):
    reg, truth, _, _ = same_reg
    err = _errors(reg, truth)
    before = np.linalg.norm(reg.source.points - truth, axis=1)
    assert before.mean() > 10.0  # the problem is not trivial: 20 degrees, 10 mm, 10 mm warp
    assert err.mean() < 0.5 and np.percentile(err, 95) < 1.5


def test_outputs_are_consistent(same_reg, warped_same):
    reg, truth, _, lm = same_reg
    source, target, _ = warped_same
    np.testing.assert_array_equal(reg.warped.faces, source.faces)
    np.testing.assert_allclose(reg.displacement, reg.warped.points - source.points)
    np.testing.assert_allclose(reg.warped.point_data["displacement"], reg.displacement)
    # deformation.apply moves any points exactly as the source was moved
    np.testing.assert_allclose(reg.deformation.apply(source.points[:50]), reg.warped.points[:50], atol=1e-8)
    np.testing.assert_allclose(reg.landmarks, reg.warped.points[lm], atol=1e-8)
    c = reg.correspondences
    assert c.target_points.shape == (source.n_points, 3) and c.mass.shape == (source.n_points,)
    assert c.target_index.min() >= 0 and c.target_index.max() < target.n_points
    # the matched target vertex of each source vertex is its true image's twin, for most vertices
    twin = np.linalg.norm(target.points[c.target_index] - truth, axis=1)
    assert np.mean(twin < 1e-6) > 0.8
    r = reg.prealign[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)  # rigid preset: a rotation
    assert reg.history and all(np.isfinite(h.value) for h in reg.history)


def test_metrics_before_and_after(same_reg):
    reg, _, _, _ = same_reg
    before, after = reg.metrics["before"], reg.metrics["after"]
    assert after["chamfer_surface"] < 0.05 * before["chamfer_surface"]
    assert after["hd95"] < before["hd95"] and after["hausdorff"] < before["hausdorff"]
    assert after["tre_mean"] < 0.5 < 10.0 < before["tre_mean"]
    assert after["folded_fraction"] < 0.01 and 0.0 < after["jacobian_min"] <= after["jacobian_max"]


def test_progress_is_monotone_and_reaches_one(same_reg):
    _, _, calls, _ = same_reg
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert {"pre-alignment", "non-rigid"} <= {m.split(":")[0] for _, m in calls}


@pytest.mark.slow
def test_nonrigid_remeshed_target(warped_remeshed):
    source, target, truth = warped_remeshed
    reg = register(source, target, "nonrigid")
    err = _errors(reg, truth)
    # ~1000 target vertices, mean edge ~10 mm: the tangential position is known to ~h/10
    assert err.mean() < 1.5
    assert reg.metrics["after"]["chamfer_surface"] < 0.8
    assert reg.metrics["after"]["chamfer_surface"] < 0.15 * reg.metrics["before"]["chamfer_surface"]


@pytest.mark.slow
def test_diffeomorphic_preset_does_not_fold(small_brain):
    from shapeot.shapes.synthetic import warp_pair

    pair = warp_pair(small_brain, seed=2, resample=False)
    reg = register(small_brain, shuffled(pair.target), "diffeomorphic")
    after = reg.metrics["after"]
    assert after["folded"] == 0
    assert 0.2 <= after["jacobian_min"] and after["jacobian_max"] <= 5.0
    ratio = after["area_ratio_min"], after["area_ratio_max"]
    assert 0.2 <= ratio[0] and ratio[1] <= 5.0
    assert _errors(reg, pair.truth).mean() < 1.5


@pytest.mark.slow
@pytest.mark.parametrize("angle", [20.0, 110.0])
def test_rigid_recovers_an_analytic_motion(small_brain, angle):
    """20 degrees from the identity start; 110 degrees needs one of the cube's starting rotations."""
    motion = random_rigid(angle_deg=angle, translation_mm=10.0, centre=small_brain.points.mean(0), seed=4)
    target = shuffled(small_brain.with_points(motion.apply(small_brain.points)))
    reg = register(small_brain, target, RegistrationConfig.from_preset("rigid", compute_metrics=False))
    rot_err = np.degrees(np.arccos(np.clip((np.trace(reg.prealign[:3, :3].T @ motion.rotation) - 1) / 2, -1, 1)))
    err = np.linalg.norm(reg.warped.points - motion.apply(small_brain.points), axis=1)
    print(f"rotation error {rot_err:.3f} deg, vertex error mean {err.mean():.3f} max {err.max():.3f} mm")
    assert rot_err < 0.1
    assert err.mean() < 0.1 and err.max() < 0.2


def test_affine_recovers_an_analytic_affine_map(small_brain):
    a = np.array([[1.1, 0.1, 0.0], [0.0, 0.9, 0.05], [0.05, 0.0, 1.05]])
    c = small_brain.points.mean(0)
    truth = (small_brain.points - c) @ a.T + c + [3.0, -2.0, 5.0]
    reg = register(small_brain, shuffled(small_brain.with_points(truth)),
                   RegistrationConfig.from_preset("affine", compute_metrics=False, prealign={"starts": 1}))
    assert np.linalg.norm(reg.warped.points - truth, axis=1).mean() < 0.3
    np.testing.assert_allclose(reg.prealign[:3, :3], a, atol=5e-3)


def test_cancel_raises(small_brain):
    with pytest.raises(Cancelled):
        register(small_brain, small_brain, "rigid", progress=lambda f, m: f < 0.05)


def test_bad_inputs(small_brain):
    with pytest.raises(ValueError, match="convert one first"):
        register(small_brain, small_brain.replace(units="m"), "rigid")
    with pytest.raises(ValueError, match="preset"):
        register(small_brain, small_brain, "wobbly")
    with pytest.raises(ValueError, match="landmarks"):
        register(small_brain, small_brain, "rigid", landmarks=(np.zeros((3, 3)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="prealign.model: must be one of 'rigid', 'similarity', 'affine'"):
        RegistrationConfig.from_preset("rigid", prealign={"model": "projective"})
    with pytest.raises(ValueError, match=r"prealign.starts: must be between 1 and 24; got 25"):
        RegistrationConfig.from_preset("rigid", prealign={"starts": 25})


@pytest.mark.slow
def test_normals_in_the_cost_and_their_orientation(small_brain):
    """Levels with ``normals`` > 0 match (x, alpha n) in 6-D; a target whose triangles are
    oriented the other way gives the same result (its normals are flipped globally)."""
    from shapeot.registration import Level
    from shapeot.shapes.synthetic import warp_pair

    pair = warp_pair(small_brain, seed=3, resample=False)
    target = shuffled(pair.target)
    flipped = target.replace(faces=target.faces[:, ::-1].copy())
    levels = (Level(None, 0.06, 0.4, 2, normals=0.1), Level(None, 0.02, 0.1, 2, normals=0.1))
    cfg = RegistrationConfig.from_preset("nonrigid", compute_metrics=False, prealign={"starts": 1}, levels=levels)
    a, b = register(small_brain, target, cfg), register(small_brain, flipped, cfg)
    np.testing.assert_allclose(a.warped.points, b.warped.points, atol=1e-6)
    before = np.linalg.norm(a.source.points - pair.truth, axis=1).mean()
    assert _errors(a, pair.truth).mean() < 0.2 * before
    assert a.correspondences.target_points.shape == (small_brain.n_points, 3)
    with pytest.raises(ValueError, match="normals"):
        RegistrationConfig(levels=(Level(None, 0.01, 0.04, 1, normals=-1.0),))
    with pytest.raises(ValueError, match="min_width_spacings"):
        RegistrationConfig(min_width_spacings=-1.0)


def test_cloud_normals_and_their_sign_free_cost():
    """Point clouds get unoriented normals by local PCA (on a sampled ellipsoid they are the
    analytic normals up to sign), compared through projectors: |F(n) - F(m)|^2 = 2 - 2 (n.m)^2."""
    from shapeot.registration.nonrigid import _cloud_normals, _line_features

    rng = np.random.default_rng(0)
    u = rng.normal(size=(4000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    axes = np.array([40.0, 25.0, 15.0])
    pts = u * axes
    exact = pts / axes ** 2  # gradient of sum (x_i / a_i)^2
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    n = _cloud_normals(pts)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
    assert np.median(np.abs((n * exact).sum(1))) > 0.995
    a, b = u[:100], u[100:200]
    fa, fb = _line_features(a), _line_features(b)
    np.testing.assert_allclose(((fa - fb) ** 2).sum(1), 2 - 2 * (a * b).sum(1) ** 2, atol=1e-12)
    np.testing.assert_allclose(_line_features(-a), fa)


def test_clouds_register_with_estimated_normals(small_brain):
    """Levels with normals on two point clouds (no faces) match positions and PCA normals (9-D:
    x and the projector features) and recover the known warp."""
    from shapeot.registration import Level
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import warp_pair

    pair = warp_pair(small_brain, seed=3, resample=False)
    src, tgt = Shape(small_brain.points, units="mm"), Shape(pair.target.points, units="mm")
    levels = (Level(None, 0.06, 0.4, 2, normals=0.2), Level(None, 0.02, 0.1, 2, normals=0.2))
    cfg = RegistrationConfig.from_preset("nonrigid", compute_metrics=False, prealign={"starts": 1}, levels=levels)
    reg = register(src, tgt, cfg)
    before = np.linalg.norm(src.points - pair.truth, axis=1).mean()
    assert _errors(reg, pair.truth).mean() < 0.2 * before
    assert len(reg.history) > 0 and all(np.isfinite(h.value) for h in reg.history)


@pytest.mark.slow  # last in the file: ~12 s quiet, ~45 s on a loaded 2-core machine
def test_nonrigid_full_brain_has_no_sliding_patches(brain_full):
    """The 10k-vertex fsaverage5 surface, same vertices: the 95th percentile of the vertex error.

    With grid clusters at the middle levels (2000 and 4000 points) a ~500-vertex patch of the
    temporal lobe slid 3 mm along its folds (p95 2.2 mm, mean 0.48 mm); the full-resolution
    middle level of the preset removed it (p95 0.74 mm, mean 0.25 mm), and the normals in the
    cost (issue 16) bring it to p95 0.14 mm, mean 0.06 mm (max 0.47 mm). Only the full mesh shows
    it (the 5k and 7k decimations do not), hence this size. About 30 s on a quiet 2-core CPU.
    """
    from shapeot.shapes.synthetic import warp_pair

    pair = warp_pair(brain_full, seed=1, resample=False)
    cfg = RegistrationConfig.from_preset("nonrigid", compute_metrics=False, prealign={"starts": 1})
    reg = register(brain_full, shuffled(pair.target, seed=1), cfg)
    err = _errors(reg, pair.truth)
    assert err.mean() < 0.15 and np.percentile(err, 95) < 0.4
