"""Known deformations: diffeomorphic, invertible, of the advertised size, averaging out."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from shapeot.shapes import synthetic


def _jacobian_determinants(transform, points, h=1e-3):
    """det of the central-difference Jacobian of ``transform`` at each point."""
    cols = [(transform(points + h * e) - transform(points - h * e)) / (2 * h) for e in np.eye(3)]
    return np.linalg.det(np.stack(cols, axis=2))  # (M, 3, 3): column j = d transform / d x_j


def test_flow_is_a_diffeomorphism_with_inverse(sphere):
    flow = synthetic.random_diffeomorphism(sphere, amplitude=3.0, seed=4)
    # Amplitude is the peak velocity over the shape, by construction.
    assert np.linalg.norm(flow.velocity(np.asarray(sphere.points)), axis=1).max() == pytest.approx(3.0)
    grid = np.stack(np.meshgrid(*[np.linspace(-14, 14, 9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert _jacobian_determinants(flow.apply, grid).min() > 0.2  # orientation kept, no folds
    back = flow.inverse().apply(flow.apply(grid))
    np.testing.assert_allclose(back, grid, atol=1e-4)
    moved = np.linalg.norm(flow.apply(sphere.points) - sphere.points, axis=1).max()
    assert 1.5 < moved < 4.5


def test_rigid_motion_matrix_and_inverse():
    rigid = synthetic.random_rigid(angle_deg=20.0, translation_mm=10.0, centre=np.array([5.0, -3, 2]), seed=1)
    angle = np.degrees(np.arccos((np.trace(rigid.rotation) - 1) / 2))
    assert angle == pytest.approx(20.0)
    assert np.linalg.norm(rigid.translation) == pytest.approx(10.0)
    assert np.linalg.det(rigid.rotation) == pytest.approx(1.0)
    x = np.random.default_rng(0).normal(size=(20, 3))
    homogeneous = np.c_[x, np.ones(20)] @ rigid.matrix().T
    np.testing.assert_allclose(homogeneous[:, :3], rigid.apply(x))
    np.testing.assert_allclose(rigid.inverse().apply(rigid.apply(x)), x, atol=1e-12)


def test_resample_surface_keeps_the_surface_but_no_vertex(sphere):
    fine = sphere.decimate(10_000)  # no-op: returns the sphere itself
    resampled = synthetic.resample_surface(fine, seed=3)
    assert abs(resampled.n_points - sphere.n_points) <= 0.05 * sphere.n_points
    distance, _ = cKDTree(sphere.points).query(resampled.points)
    assert distance.min() > 1e-6  # no vertex keeps its twin
    # Still the 10 mm sphere (within the chord error of the original tessellation).
    assert np.abs(np.linalg.norm(resampled.points, axis=1) - 10.0).max() < 0.3
    try:
        import vtkmodules  # noqa: F401
    except ImportError:
        pass  # vertex-clustering decimation (no VTK) may leave non-manifold edges
    else:
        assert resampled.is_closed
    assert synthetic.resample_surface(fine, seed=3).points.tobytes() == resampled.points.tobytes()  # seeded


def test_warp_pair_has_the_advertised_motion(sphere):
    big = sphere.with_points(sphere.points * 5.0)  # a 50 mm sphere: a brain-sized object
    pair = synthetic.warp_pair(big, seed=2)
    rigid = pair.warp.rigid
    assert np.degrees(np.arccos((np.trace(rigid.rotation) - 1) / 2)) == pytest.approx(20.0)
    assert np.linalg.norm(rigid.translation) == pytest.approx(10.0)
    np.testing.assert_allclose(pair.truth, pair.warp.apply(big.points))
    non_rigid = pair.warp.flow.apply(big.points) - big.points
    assert 6.0 < np.linalg.norm(non_rigid, axis=1).max() < 14.0  # "about 10 mm"
    # The target is the warped surface, resampled: close to the truth, no vertex in common.
    distance, _ = cKDTree(pair.truth).query(pair.target.points)
    assert distance.min() > 1e-6
    assert np.median(distance) < 3.0  # typical spacing of the 50 mm sphere's vertices is ~4 mm


def test_cohort_averages_to_the_reference_and_has_a_dominant_mode(sphere):
    big = sphere.with_points(sphere.points * 5.0)
    cohort = synthetic.make_cohort(big, n_subjects=8, seed=5, angle_deg=0, translation_mm=0, resample=False)
    truths = np.stack(cohort.truths)  # (S, N, 3)
    mean_error = np.linalg.norm(truths.mean(axis=0) - big.points, axis=1).max()
    spread = np.linalg.norm(truths - big.points, axis=2).max()
    assert mean_error < 0.1 * spread  # opposite warps cancel to second order
    np.testing.assert_allclose(cohort.mode_scores[0::2], -cohort.mode_scores[1::2])
    # The first principal direction of the displacements is the shared mode.
    displacements = (truths - big.points).reshape(len(truths), -1)
    _, _, vt = np.linalg.svd(displacements - displacements.mean(axis=0), full_matrices=False)
    mode = cohort.mode.ravel() / np.linalg.norm(cohort.mode)
    assert abs(vt[0] @ mode) > 0.9
    for subject, truth in zip(cohort.subjects, cohort.truths):
        np.testing.assert_allclose(subject.points, truth)


def test_cohort_with_rigid_motions_and_resampling_is_seeded(sphere):
    a = synthetic.make_cohort(sphere, n_subjects=2, seed=9)
    b = synthetic.make_cohort(sphere, n_subjects=2, seed=9)
    assert len(a.subjects) == 2
    for sa, sb in zip(a.subjects, b.subjects):
        np.testing.assert_array_equal(sa.points, sb.points)
        np.testing.assert_array_equal(sa.faces, sb.faces)
    # The two subjects of a pair use opposite rigid motions.
    np.testing.assert_allclose(a.warps[1].rigid.rotation, a.warps[0].rigid.rotation.T)


def test_linear_pairs_with_normal_bumps_average_exactly_and_move_along_the_normals(sphere):
    """pairs="linear": x +- u(x), u free of similarities, so a pair averages exactly to the
    reference; normal_amplitude adds bumps and dents that move the surface along its normals."""
    from shapeot.shapes.geometry import vertex_normals

    big = sphere.with_points(sphere.points * 5.0)  # radius 50 mm; kernel width 20 mm
    pts = np.asarray(big.points)
    plain = synthetic.make_cohort(big, 4, 3, angle_deg=0, translation_mm=0, resample=False, pairs="linear")
    bumpy = synthetic.make_cohort(big, 4, 3, angle_deg=0, translation_mm=0, resample=False, pairs="linear",
                                  normal_amplitude=8.0)
    assert bumpy.parameters["pairs"] == "linear" and bumpy.parameters["normal_amplitude"] == 8.0
    normals = vertex_normals(pts, np.asarray(big.faces))
    for cohort in (plain, bumpy):
        truths = np.stack(cohort.truths)
        np.testing.assert_allclose(truths[0::2] + truths[1::2], np.broadcast_to(2 * pts, truths[0::2].shape), atol=1e-9)
        u = truths[0] - pts
        # Free of similarities: no net translation, rotation or scaling (area-weighted).
        a = np.asarray(big.weights) / np.sum(big.weights)
        q = pts - a @ pts
        assert np.linalg.norm(a @ u) < 1e-9 and np.linalg.norm(a @ np.cross(q, u)) < 1e-9
        assert abs(a @ (q * u).sum(1)) < 1e-9
        assert min(w.flow.min_jacobian(pts) for w in cohort.warps) > 0  # no folds
        np.testing.assert_allclose(cohort.warps[0].apply(pts), truths[0])
    normal_mm = [np.mean([np.abs(((t - pts) * normals).sum(1)).mean() for t in c.truths]) for c in (plain, bumpy)]
    assert normal_mm[1] > 1.5 * normal_mm[0], normal_mm
    # The mode: the subjects' first principal direction, scores opposite within a pair.
    np.testing.assert_allclose(bumpy.mode_scores[0::2], -bumpy.mode_scores[1::2])
    assert np.linalg.norm(bumpy.mode, axis=1).max() == pytest.approx(1.0)
    # Without the new options the cohort is the one these arguments always gave.
    a0 = synthetic.make_cohort(big, 4, 3, resample=False)
    b0 = synthetic.make_cohort(big, 4, 3, resample=False, normal_amplitude=0.0, pairs="flow")
    for ta, tb in zip(a0.truths, b0.truths):
        np.testing.assert_array_equal(ta, tb)
    assert "pairs" not in a0.parameters


def test_linear_pairs_refuse_a_folding_displacement(sphere):
    with pytest.raises(ValueError, match="folds"):
        synthetic.make_cohort(sphere, 2, 0, amplitude=30.0, width=3.0, pairs="linear", resample=False)
    with pytest.raises(ValueError, match="pairs"):
        synthetic.make_cohort(sphere, 2, 0, pairs="other")


def test_velocity_jacobian_matches_finite_differences(sphere):
    flow = synthetic.random_diffeomorphism(sphere, amplitude=3.0, seed=2)
    x = np.asarray(sphere.points)[:50] * 1.1
    h = 1e-4
    numeric = np.stack([(flow.velocity(x + h * e) - flow.velocity(x - h * e)) / (2 * h) for e in np.eye(3)], axis=2)
    np.testing.assert_allclose(flow.jacobian(x, chunk=7), numeric, atol=1e-7)
