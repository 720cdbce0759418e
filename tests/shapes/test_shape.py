"""The Shape type: validation, weights, geometry, immutability, decimation, pyvista."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from shapeot.shapes import Shape, ShapeError

SQUARE = np.array([[0.0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0], [3, 0.5, 0]])
# Two triangles of area 1 share edge 0-2; a third, of area 0.5 * 1 * 1 = 0.5, hangs off 1-2.
SQUARE_FACES = np.array([[0, 1, 2], [0, 2, 3], [1, 4, 2]])


def test_vertex_normals_are_radial_on_a_sphere_and_follow_the_orientation():
    """Analytic reference: on a fine icosphere centred at 0 the unit vertex normals are p / |p|
    (outward for outward-wound triangles, inward when the winding is reversed); a vertex no
    triangle uses gets a zero normal."""
    import trimesh

    from shapeot.shapes.geometry import vertex_normals

    ico = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    p, f = np.asarray(ico.vertices), np.asarray(ico.faces)
    radial = p / np.linalg.norm(p, axis=1, keepdims=True)
    n = vertex_normals(p, f)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
    assert float((n * radial).sum(1).min()) > 0.999
    np.testing.assert_allclose(vertex_normals(p, f[:, ::-1]), -n, atol=1e-12)
    lonely = vertex_normals(np.vstack([p, [[50.0, 0, 0]]]), f)
    assert np.array_equal(lonely[-1], np.zeros(3))


def test_weights_are_one_third_of_incident_triangle_areas():
    shape = Shape(SQUARE, SQUARE_FACES)
    # By hand: areas 1, 1, 0.5 (total 2.5); vertex 0 touches two unit triangles, vertex 1 one
    # unit and the half triangle, vertex 2 all three, vertex 3 one unit, vertex 4 the half.
    by_hand = np.array([2, 1.5, 2.5, 1, 0.5]) / 3
    np.testing.assert_allclose(shape.weights, by_hand / by_hand.sum())
    assert shape.area == pytest.approx(2.5)


def test_point_cloud_weights_are_uniform_and_custom_weights_normalised():
    cloud = Shape(np.random.default_rng(0).normal(size=(7, 3)))
    np.testing.assert_allclose(cloud.weights, np.full(7, 1 / 7))
    assert cloud.faces is None and not cloud.is_closed
    custom = Shape(SQUARE, weights=[1, 1, 2, 0, 0])
    np.testing.assert_allclose(custom.weights, [0.25, 0.25, 0.5, 0, 0])


def test_diameter_matches_all_pairs_and_closedness(sphere):
    pts = np.random.default_rng(3).normal(size=(500, 3)) * [30, 10, 5]
    assert Shape(pts).diameter == pytest.approx(pdist(pts).max())
    flat = np.c_[np.random.default_rng(4).normal(size=(200, 2)), np.zeros(200)]  # Qhull fails
    assert Shape(flat).diameter == pytest.approx(pdist(flat).max())
    assert sphere.diameter == pytest.approx(20.0, rel=1e-9)  # icosphere vertices include poles
    assert sphere.is_closed
    assert not Shape(sphere.points, sphere.faces[1:]).is_closed


def test_shape_is_immutable_and_operations_return_new_shapes(sphere):
    before = {k: np.array(v) for k, v in [("p", sphere.points), ("f", sphere.faces), ("w", sphere.weights)]}
    with pytest.raises(ValueError):
        sphere.points[0, 0] = 1.0  # read-only array
    with pytest.raises(dataclasses.FrozenInstanceError):
        sphere.name = "other"
    with pytest.raises(TypeError):
        sphere.point_data["new"] = np.zeros(sphere.n_points)
    moved = sphere.with_points(sphere.points * 2.0)
    coarse = sphere.decimate(200)
    assert moved is not sphere and coarse is not sphere
    np.testing.assert_array_equal(sphere.points, before["p"])
    np.testing.assert_array_equal(sphere.faces, before["f"])
    np.testing.assert_array_equal(sphere.weights, before["w"])
    # A caller's array is copied, so changing it later does not change the shape.
    pts = np.array(SQUARE)
    shape = Shape(pts, SQUARE_FACES)
    pts[0] = 99
    assert shape.points[0, 0] == 0.0


@pytest.mark.parametrize("use_vtk", [True, False])
def test_decimate_keeps_the_surface(sphere, use_vtk, monkeypatch):
    if use_vtk:
        pytest.importorskip("vtkmodules", reason="quadric decimation needs VTK (shapeot[vtk])")
    else:
        from shapeot.shapes import decimate, errors

        def no_vtk(*args):
            raise errors.MissingDependencyError("pretend VTK is missing")

        monkeypatch.setattr(decimate, "_quadric_vtk", no_vtk)
    coarse = sphere.decimate(160)
    assert 120 <= coarse.n_points <= 200
    radii = np.linalg.norm(coarse.points, axis=1)
    assert np.all(np.abs(radii - 10.0) < 0.6)  # still on (near) the 10 mm sphere
    assert coarse.weights.sum() == pytest.approx(1.0)
    assert set(coarse.point_data) == {"displacement", "thickness"}
    assert coarse.point_data["thickness"].shape == (coarse.n_points,)
    if use_vtk:
        assert coarse.is_closed


def test_decimate_point_cloud():
    pts = np.random.default_rng(0).uniform(-5, 5, size=(4000, 3))
    coarse = Shape(pts).decimate(300)
    assert 200 <= coarse.n_points <= 400 and coarse.faces is None


@pytest.mark.parametrize(
    "points, faces, message",
    [
        (np.zeros((5, 2)), None, r"\(N, 3\)"),
        (np.zeros((0, 3)), None, "empty"),
        (np.array([[0, 0, 0], [1, np.nan, 0], [0, 1, 0]]), None, "NaN"),
        (np.eye(3), np.array([[0, 1, 3]]), "face indices"),
        (np.eye(3), np.array([[0, -1, 2]]), "face indices"),
    ],
)
def test_invalid_shapes_raise_shape_error(points, faces, message):
    with pytest.raises(ShapeError, match=message):
        Shape(points, faces)
    assert issubclass(ShapeError, ValueError)


def test_to_pyvista(sphere):
    pytest.importorskip("vtkmodules")
    pytest.importorskip("pyvista")
    mesh = sphere.to_pyvista()
    assert mesh.n_points == sphere.n_points and mesh.n_cells == len(sphere.faces)
    np.testing.assert_allclose(mesh.points, sphere.points)
    np.testing.assert_array_equal(mesh.regular_faces, sphere.faces)
    np.testing.assert_allclose(mesh.point_data["displacement"], sphere.point_data["displacement"])
    cloud = Shape(sphere.points).to_pyvista()
    assert cloud.n_points == sphere.n_points and cloud.n_verts == sphere.n_points


def test_import_is_light():
    code = (
        "import sys, shapeot.shapes, shapeot.shapes.synthetic;"
        "heavy = [m for m in ('vtk', 'vtkmodules', 'torch', 'pyvista', 'meshio', 'nibabel', 'shapeot.ot')"
        " if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
