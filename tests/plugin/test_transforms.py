"""The deformation as a Slicer transform node: hardening reproduces the registration.

Oracles: the registration's own warped points (``shapeot.register``) for the real case; an
analytic smooth map for the grid machinery (node values, VTK's interpolation, refinement).
"""
from __future__ import annotations

import numpy as np
import pytest


class Wave:
    """phi(x) = x + a sin(x . k + c) (a, k in R^3): a smooth analytic deformation, cheap to evaluate."""

    def __init__(self, amplitude=(2.0, -1.5, 1.0), wavevector=(0.06, 0.05, -0.04), phase=0.3):
        self.a, self.k, self.c = np.asarray(amplitude), np.asarray(wavevector), phase
        self.calls = 0

    def apply(self, points: np.ndarray) -> np.ndarray:
        self.calls += len(points)
        p = np.asarray(points, dtype=np.float64)
        return p + np.sin(p @ self.k + self.c)[:, None] * self.a


def _harden_copy(scene, shape, transform_node, slicer_core):
    """A copy of ``shape`` as a model under ``transform_node``, hardened the way Slicer does it."""
    from ShapeOTLib import nodes

    copy = nodes.model_from_shape(scene, shape, name="copy to harden")
    copy.SetAndObserveTransformNodeID(transform_node.GetID())
    slicer_core.vtkSlicerTransformLogic.hardenTransform(copy)
    assert copy.GetParentTransformNode() is None
    return nodes.shape_from_model(copy)


def test_hardening_the_output_transform_reproduces_the_warped_points(registered, slicer_core):
    result = registered.result
    node = result.transform_node
    assert node.IsA("vtkMRMLGridTransformNode")
    hardened = _harden_copy(registered.scene, result.source, node, slicer_core)
    err = np.linalg.norm(hardened.points - result.registration.warped.points, axis=1)
    assert err.max() < 0.1, f"hardening is {err.max():.3f} mm off"
    assert result.transform_report.max_error_mm == pytest.approx(err.max(), abs=1e-9)
    # the registration moved the surface by centimetres, so 0.1 mm is a real constraint
    assert np.linalg.norm(result.registration.displacement, axis=1).max() > 10.0


def test_grid_is_stored_to_parent_and_its_inverse_maps_back(registered):
    from ShapeOTLib.transforms import transform_points

    node = registered.result.transform_node
    to_parent, from_parent = node.GetTransformToParent(), node.GetTransformFromParent()
    from_parent.Update()
    assert to_parent.GetInverseFlag() == 0 and from_parent.GetInverseFlag() == 1  # see arrayFromGridTransform
    assert to_parent.GetInterpolationMode() == 1  # linear: what ITK files and resampling use
    import vtk

    warped = np.asarray(registered.result.registration.warped.points)
    inverse = vtk.vtkGeneralTransform()
    node.GetTransformFromWorld(inverse)
    back = np.array([inverse.TransformPoint(*p) for p in warped[::7]])
    np.testing.assert_allclose(back, registered.result.source.points[::7], atol=0.05)  # Newton inversion
    np.testing.assert_allclose(transform_points(node, registered.result.source.points[:5]), warped[:5], atol=0.1)


def test_the_opposite_convention_would_not_reproduce_the_warp(registered, slicer_core):
    """The same displacement grid stored *from* parent (the ITK/resampling convention) is wrong here."""
    grid = registered.result.transform_node.GetTransformToParent()
    wrong = registered.scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "from parent")
    copy = slicer_core.vtkOrientedGridTransform()
    copy.DeepCopy(grid)
    wrong.SetAndObserveTransformFromParent(copy)
    hardened = _harden_copy(registered.scene, registered.result.source, wrong, slicer_core)
    err = np.linalg.norm(hardened.points - registered.result.registration.warped.points, axis=1)
    assert err.max() > 1.0


def test_grid_nodes_hold_the_deformation_and_vtk_interpolates_them_as_assumed(brain_full):
    from ShapeOTLib.transforms import _trilinear, displacement_field, grid_transform

    wave = Wave()
    points = brain_full.points[::20]
    geometry, field, info = displacement_field(wave, points, spacing=4.0, coarse_nodes=2000)
    assert info["refinements"] == 0 and geometry.spacing == 4.0
    # exact values at the corners of the cells holding the points
    cells = np.floor((points - geometry.origin) / geometry.spacing).astype(int)
    for corner in ((0, 0, 0), (1, 1, 1), (1, 0, 1)):
        ijk = cells + corner
        g = geometry.positions(ijk)
        np.testing.assert_allclose(field[ijk[:, 2], ijk[:, 1], ijk[:, 0]], wave.apply(g) - g, atol=1e-12)
    # VTK's trilinear interpolation of the grid (x fastest, origin, spacing) is the one assumed
    grid = grid_transform(geometry, field)
    rng = np.random.default_rng(1)
    inside = geometry.origin + rng.random((300, 3)) * (np.array(geometry.dims) - 1) * geometry.spacing
    by_vtk = np.array([grid.TransformPoint(*p) for p in inside])
    np.testing.assert_allclose(by_vtk, inside + _trilinear(field, geometry, inside), atol=1e-4)  # VTK: float weights
    # the coarse fill is a fair approximation away from the points (wave length ~ 80 mm)
    np.testing.assert_allclose(by_vtk, wave.apply(inside), atol=0.5)


def test_automatic_spacing_refines_until_the_tolerance_is_met(scene, brain_full):
    from ShapeOTLib.transforms import deformation_transform_node, displacement_field

    wave = Wave(amplitude=(1.0, -0.8, 0.6), wavevector=(0.3, 0.25, -0.2))  # ~20 mm wavelength
    points = brain_full.points[np.linalg.norm(brain_full.points - brain_full.points[0], axis=1) < 25.0]
    _, _, coarse = displacement_field(wave, points, spacing=12.0, coarse_nodes=2000, margin=1.0)
    assert coarse["max_error_mm"] > 0.05  # a 12 mm grid is far too coarse for this wave
    node, report = deformation_transform_node(scene, wave, points, tolerance=0.005, coarse_nodes=2000, margin=1.0)
    diagonal = float(np.linalg.norm(points.max(0) - points.min(0)))
    assert report.kind == "grid" and report.refinements == 1  # the first spacing (1/128 diagonal) was not enough
    assert report.spacing_mm == pytest.approx(diagonal / 256)
    assert report.max_error_mm <= 0.005  # measured through VTK's transform, as hardening applies it
    assert report.exact_nodes <= 8 * len(points)
    assert float(node.GetAttribute("ShapeOT.MaxErrorAtSourceMM")) == pytest.approx(report.max_error_mm, rel=1e-3)


def test_linear_maps_become_exact_linear_transform_nodes(scene, small_brain):
    from ShapeOTLib.transforms import deformation_transform_node, transform_points

    angle = np.deg2rad(20.0)
    m = np.eye(4)
    m[:3, :3] = [[1.1 * np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.2], [0.0, 0.0, 0.9]]
    m[:3, 3] = [3.0, -4.0, 5.0]

    class Affine:
        def apply(self, p):
            return np.asarray(p) @ m[:3, :3].T + m[:3, 3]

    node, report = deformation_transform_node(scene, Affine(), small_brain.points, matrix=m)
    assert node.IsA("vtkMRMLLinearTransformNode") and report.kind == "linear"
    assert report.max_error_mm < 1e-9
    np.testing.assert_allclose(transform_points(node, small_brain.points), Affine().apply(small_brain.points),
                               atol=1e-9)
