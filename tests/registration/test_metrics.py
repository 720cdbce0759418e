"""Metrics against analytic values."""
from __future__ import annotations

import numpy as np
import pytest

from shapeot.metrics import (
    area_ratios,
    chamfer,
    directed_distances,
    distance_summary,
    error_summary,
    folded_triangles,
    hausdorff,
    hd95,
    target_registration_errors,
    warp_summary,
)


@pytest.fixture(scope="module")
def sphere():
    import trimesh

    from shapeot.shapes import Shape

    m = trimesh.creation.icosphere(subdivisions=4, radius=50.0)
    return Shape(np.asarray(m.vertices), np.asarray(m.faces))


def test_identical_shapes_score_zero(sphere):
    s = distance_summary(sphere, sphere)
    assert s.chamfer == 0 and s.hausdorff == 0 and s.hd95 == 0
    assert s.chamfer_surface == pytest.approx(0.0, abs=1e-9)


def test_point_to_surface_is_the_exact_distance_to_a_triangle():
    from shapeot.shapes import Shape

    tri = Shape(np.array([[0.0, 0, 0], [10.0, 0, 0], [0.0, 10, 0]]), np.array([[0, 1, 2]]))
    q = np.array([[2.0, 2.0, 3.0], [-4.0, 0.0, 0.0], [10.0, 10.0, 0.0]])
    expected = [3.0, 4.0, np.sqrt(50.0)]  # above the face, off a vertex, off the hypotenuse
    np.testing.assert_allclose(directed_distances(q, tri, surface=True), expected, atol=1e-9)
    np.testing.assert_allclose(directed_distances(q, tri), [np.sqrt(17.0), 4.0, 10.0], atol=1e-9)


def test_two_samplings_of_one_surface_score_near_zero_on_the_surface(sphere):
    from shapeot.shapes.synthetic import resample_surface

    other = resample_surface(sphere, seed=0, n_points=sphere.n_points // 2)
    point, surface = chamfer(sphere, other), chamfer(sphere, other, surface=True)
    # The resampled vertices lie on the original triangles; the sphere's own vertices lie
    # within the chordal sag (r (1 - cos(h / 2r)) ~ 0.05 mm here) of the other's triangles.
    assert surface < 0.1 < point
    assert surface < 0.1 * point


def test_hausdorff_and_hd95_of_an_outlier():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 10, (1000, 3))
    out = np.array([10.0, 10.0, 40.0])  # one outlier, about 30 mm above the cloud
    b = np.vstack([a, out])
    d = np.linalg.norm(a - out, axis=1).min()  # brute force, independent of the KD-tree
    assert hausdorff(a, b) == pytest.approx(d, abs=1e-9)
    assert hd95(a, b) == 0.0  # one point in 1001 does not move the 95th percentile
    assert chamfer(a, b) == pytest.approx(0.5 * d / 1001)


def test_area_ratios_and_folds(sphere):
    p, f = np.asarray(sphere.points), sphere.faces
    np.testing.assert_allclose(area_ratios(p, 2.0 * p, f), 4.0, rtol=1e-12)
    rot = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert not folded_triangles(p, p @ rot.T + 3.0, f).any()  # a rigid motion folds nothing
    pulled = p.copy()
    v = f[0, 0]
    pulled[v] *= 0.5  # push one vertex deep through the surface: its triangles turn over
    folds = folded_triangles(p, pulled, f)
    ring = np.flatnonzero((f == v).any(1))
    assert folds[ring].all() and folds.sum() == len(ring)
    s = warp_summary(p, pulled, f)
    assert s.folded == len(ring) and s.area_ratio_max > 1.0


def test_tre_and_error_summary():
    moved = np.zeros((4, 3))
    target = np.array([[3.0, 4, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3]])
    np.testing.assert_allclose(target_registration_errors(moved, target), [5, 1, 2, 3])
    s = error_summary([5, 1, 2, 3])
    assert (s.mean, s.median, s.max) == (2.75, 2.5, 5.0)
    with pytest.raises(ValueError):
        target_registration_errors(moved, target[:3])


def test_warp_energy_of_a_known_strain_after_a_rigid_motion(sphere):
    """phi = psi o P with P rigid and psi(x) = x + G x: D psi - I = G everywhere, so the report's
    strain RMS is |G|_F, its max |G|_2, and the non-rigid displacement G P x."""
    from shapeot.deform import Composition, LinearMap
    from shapeot.registration.report import registration_metrics
    from shapeot.shapes.synthetic import random_rigid

    rigid = random_rigid(angle_deg=30.0, translation_mm=10.0, centre=np.zeros(3), seed=2)
    p = np.eye(4)
    p[:3, :3], p[:3, 3] = rigid.rotation, rigid.apply(np.zeros((1, 3)))[0]
    g = np.array([[0.05, 0.02, 0.0], [0.0, -0.03, 0.01], [0.04, 0.0, 0.02]])
    psi = np.eye(4)
    psi[:3, :3] += g
    phi = Composition((LinearMap(p), LinearMap(psi)))
    warped = sphere.with_points(phi.apply(sphere.points))
    after = registration_metrics(sphere, warped, warped, phi, None, None, scale=50.0, prealign=p)["after"]
    moved = np.asarray(sphere.points) @ p[:3, :3].T + p[:3, 3]
    assert after["strain_rms"] == pytest.approx(np.linalg.norm(g), rel=1e-6)
    assert after["strain_max"] == pytest.approx(np.linalg.norm(g, 2), rel=1e-6)
    assert after["nonrigid_rms"] == pytest.approx(np.sqrt(((moved @ g.T) ** 2).sum(1).mean()), rel=1e-6)
    assert after["jacobian_min"] == pytest.approx(np.linalg.det(np.eye(3) + g), rel=1e-6)


class _Push:
    """x -> x + A exp(-|x - c|^2 / 2 s^2) t, t a unit vector tangent to the sphere at c: a bump of
    tangential shift; det D phi = 1 + A g(x) (t . (c - x)) / s^2 turns negative where A / s
    exceeds e^(1/2), and the surface then laps over itself."""

    def __init__(self, centre, amplitude: float, width: float):
        self.c, self.a, self.s = np.asarray(centre, float), amplitude, width
        t = np.cross(self.c, [0.0, 0.0, 1.0] if abs(self.c[2]) < 0.9 * np.linalg.norm(self.c) else [1.0, 0, 0])
        self.t = t / np.linalg.norm(t)

    def apply(self, q):
        q = np.asarray(q, float)
        g = np.exp(-((q - self.c) ** 2).sum(1) / (2 * self.s ** 2))
        return q + self.a * g[:, None] * self.t


def test_folds_given_the_map_count_where_it_turns_space_over(sphere):
    """With the deformation, a candidate triangle counts where det D phi <= 0 at its centroid or its
    warped normal opposes cof(D phi) n: a push that folds space is found with or without the map;
    a gentle one folds nothing."""
    from shapeot.metrics import jacobian_determinants

    p, f = np.asarray(sphere.points), sphere.faces
    c = p[0]
    deep = _Push(c, amplitude=12.0, width=4.0)  # A / s = 3 > e^(1/2): folds
    w = deep.apply(p)
    plain, given = folded_triangles(p, w, f), folded_triangles(p, w, f, deep, step=1e-3)
    assert given.sum() > 0 and (given <= plain).all()  # the map only removes candidates
    det = jacobian_determinants(deep, p[f[given]].mean(1), 1e-3)
    carried_ok = det > 0  # the rest must be triangles the interpolation inverted
    assert (det <= 0).any()
    print(f"deep push: {plain.sum()} candidates, {given.sum()} folded, {carried_ok.sum()} with det > 0")
    gentle = _Push(c, amplitude=2.0, width=8.0)  # A / s = 0.25: smooth and invertible
    assert not folded_triangles(p, gentle.apply(p), f, gentle, step=1e-3).any()
    assert jacobian_determinants(gentle, p, 1e-3).min() > 0


def test_warp_advice_tells_a_folding_map_from_a_coarse_mesh():
    """The report's advice: det D phi <= 0 (the map turns space over) differs from triangles
    turned over under an invertible map (the mesh is too coarse); nothing when neither."""
    from shapeot.cli.common import metrics_table as _metrics_table
    from shapeot.registration.report import warp_advice

    assert warp_advice({"jacobian_min": 0.4, "folded": 0}) is None
    assert warp_advice({"jacobian_min": 0.4}) is None  # a point cloud: no triangles
    coarse = warp_advice({"jacobian_min": 0.28, "folded": 3})
    assert coarse.startswith("3 triangles turned over") and "subdivide" in coarse
    assert warp_advice({"jacobian_min": 0.28, "folded": 1}).startswith("1 triangle turned")
    folding = warp_advice({"jacobian_min": -0.5, "folded": 12})
    assert "turns space over" in folding and "-0.5" in folding and "subdivide" not in folding
    table = _metrics_table({"before": {"chamfer": 2.0}, "after": {"chamfer": 0.5, "jacobian_min": 0.28,
                                                                    "folded": 3}}, "mm")
    assert table.splitlines()[-1] == f"note: {coarse}"
    assert "note:" not in _metrics_table({"before": {}, "after": {"jacobian_min": 0.9, "folded": 0}}, "mm")
