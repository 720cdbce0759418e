"""ITK displacement-field export, read back by SimpleITK (an independent implementation)."""
from __future__ import annotations

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
FLIP = np.array([-1.0, -1.0, 1.0])


def _known_map(shape):
    """A realistic smooth map: a rigid motion composed with a kernel spline of a known warp."""
    from shapeot.deform import Composition, LinearMap, smooth_displacement
    from shapeot.shapes.synthetic import random_diffeomorphism

    pts = np.asarray(shape.points)
    flow = random_diffeomorphism(shape, amplitude=6.0, seed=4)
    c = pts[:: max(1, len(pts) // 150)]  # about 150 centres
    spline = smooth_displacement(c, flow.apply(c), np.ones(len(c)), 10.0)
    m = np.eye(4)
    t = np.deg2rad(8)
    m[:3, :3] = [[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]
    m[:3, 3] = [4.0, -3.0, 2.0]
    return Composition((spline, LinearMap(m)))


def _transform_points(tx, ras):
    return np.array([tx.TransformPoint(tuple(map(float, p))) for p in np.asarray(ras) * FLIP]) * FLIP


def test_h5_transform_point_within_0p1_mm(tmp_path, small_lh):
    from shapeot.deform.itk import write_itk_displacement_field

    d = _known_map(small_lh)
    pts = np.asarray(small_lh.points)
    info = write_itk_displacement_field(d, pts, tmp_path / "warp.h5", margin_mm=10)
    tx = sitk.ReadTransform(str(tmp_path / "warp.h5"))
    assert "DisplacementField" in tx.GetName()
    err = np.linalg.norm(_transform_points(tx, pts) - d.apply(pts), axis=1)
    print(f"ITK .h5: max error {err.max():.4f} mm, spacing {info.spacing_mm:.3f} mm, grid {info.size}")
    assert err.max() <= 0.1
    assert abs(err.max() - info.max_error_mm) < 1e-6  # what we report is what ITK computes
    # the grid covers the shape with the margin, in LPS
    lps = pts * FLIP
    assert np.all(info.origin_lps <= lps.min(0) - 10 + 1e-9)
    far = info.origin_lps + info.spacing_mm * (np.asarray(info.size) - 1)
    assert np.all(far >= lps.max(0) + 10 - 1e-9)


def test_nifti_image_and_inverse(tmp_path, small_lh):
    from shapeot.deform.itk import write_itk_displacement_field

    d = _known_map(small_lh)
    pts = np.asarray(small_lh.points)
    info = write_itk_displacement_field(d, pts, tmp_path / "inv.nii.gz", direction="inverse", margin_mm=5)
    img = sitk.ReadImage(str(tmp_path / "inv.nii.gz"))
    assert img.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_allclose(img.GetOrigin(), info.origin_lps, atol=1e-4)
    tx = sitk.DisplacementFieldTransform(sitk.Cast(img, sitk.sitkVectorFloat64))
    err = np.linalg.norm(_transform_points(tx, d.apply(pts)) - pts, axis=1)
    print(f"ITK inverse .nii.gz: max error {err.max():.4f} mm, inverse residual {info.inverse_residual_mm:.2e} mm")
    assert err.max() <= 0.1  # NIfTI stores float32: a few 1e-6 mm more than the h5


def test_refuses_what_it_cannot_do(tmp_path, small_lh):
    from shapeot.deform.itk import write_itk_displacement_field

    d = _known_map(small_lh)
    with pytest.raises(ValueError, match="max_voxels"):
        write_itk_displacement_field(d, small_lh.points, tmp_path / "w.h5", tolerance_mm=1e-4, max_voxels=100_000)
    with pytest.raises(ValueError, match=".h5"):
        write_itk_displacement_field(d, small_lh.points, tmp_path / "w.txt")
    assert not list(tmp_path.iterdir())
