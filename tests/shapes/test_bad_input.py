"""Bad input: each problem raises a ValueError subclass naming the file and what is wrong."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

import shapeot.shapes as shapes
from shapeot.shapes import ShapeFileError


def _load_fails(path, match):
    before = sorted(os.listdir(os.path.dirname(path)))
    with pytest.raises(ShapeFileError, match=match) as info:
        shapes.load(path)
    assert str(path) in str(info.value)  # the message names the file
    assert isinstance(info.value, ValueError)
    assert sorted(os.listdir(os.path.dirname(path))) == before  # a failed read writes nothing
    return info.value


@pytest.mark.parametrize("name", ["bad.ply", "bad.vtp", "bad.vtk", "bad.gii", "bad.stl", "bad.off", "bad.nii.gz",
                                  "bad.nrrd", "bad.mha", "lh.pial"])
def test_corrupt_file(tmp_path, name):
    if name.endswith(".vtp"):
        pytest.importorskip("vtkmodules", reason="reading .vtp needs VTK (shapeot[vtk])")
    path = tmp_path / name
    path.write_bytes(b"\x00garbage that is no mesh at all\n" * 3)
    _load_fails(path, "cannot|could not|not a|does not appear")


def test_truncated_file(sphere, tmp_path):
    path = tmp_path / "cut.gii"
    sphere.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _load_fails(path, "GIFTI")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "mesh.xyz"
    path.write_text("1 2 3\n")
    error = _load_fails(path, "unsupported file type")
    assert isinstance(error, shapes.UnsupportedFormatError)


def test_label_not_in_scan(ball, tmp_path):
    path = ball.write_nifti(tmp_path / "ball.nii.gz")
    with pytest.raises(shapes.LabelNotFoundError, match=r"label 4 is not in the scan; labels present: 3 .*7 "):
        shapes.load(path, label=4)


def test_empty_surface(tmp_path):
    empty = tmp_path / "empty.obj"
    empty.write_text("# no vertices\n")
    _load_fails(empty, "no points")
    zero = tmp_path / "zero.ply"
    zero.write_bytes(b"")
    _load_fails(zero, "empty")
    degenerate = tmp_path / "flat.obj"  # every triangle has a repeated vertex
    degenerate.write_text("v 0 0 0\nv 1 0 0\nv 1 0 0\nf 1 2 3\n")
    _load_fails(degenerate, "empty surface")
    scan = tmp_path / "blank.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), scan)
    with pytest.raises(shapes.LabelNotFoundError, match="none"):
        shapes.load(scan, label=1)


def test_2d_point_set(tmp_path):
    path = tmp_path / "flat.obj"  # vertices with x and y only
    path.write_text("v 0 0\nv 1 0\nv 0 1\nf 1 2 3\n")
    _load_fails(path, r"points must be 3D; the OBJ vertex line 'v 0 0' has 2 coordinates")
    with pytest.raises(shapes.ShapeError, match=r"\(N, 3\)"):
        shapes.Shape(np.zeros((6, 2)))
    scan = tmp_path / "slice.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((5, 5), np.uint8), np.eye(4)), scan)
    _load_fails(scan, "3D label map")


def test_nan_coordinates(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    _load_fails(path, "NaN")
    gii = tmp_path / "inf.gii"
    shapes.Shape(np.eye(3), [[0, 1, 2]]).save(gii)
    gii.write_bytes(gzip.compress(gii.read_bytes()))  # also checks a gzipped .gii is read
    assert shapes.load(gii).n_points == 3
    pts = np.array([[0, 0, 0], [np.inf, 0, 0], [0, 1, 0]], dtype=np.float32)
    import nibabel as nib

    darrays = [nib.gifti.GiftiDataArray(pts, intent="NIFTI_INTENT_POINTSET"),
               nib.gifti.GiftiDataArray(np.array([[0, 1, 2]], np.int32), intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), tmp_path / "inf2.gii")
    _load_fails(tmp_path / "inf2.gii", "NaN or infinite")


def test_face_indices_out_of_range(tmp_path):
    path = tmp_path / "bad_index.off"
    path.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    _load_fails(path, r"face indices range over \[0, 7\] but there are 3 vertices")
    import nibabel as nib

    darrays = [nib.gifti.GiftiDataArray(np.eye(3, dtype=np.float32), intent="NIFTI_INTENT_POINTSET"),
               nib.gifti.GiftiDataArray(np.array([[0, 1, -1]], np.int32), intent="NIFTI_INTENT_TRIANGLE")]
    nib.save(nib.gifti.GiftiImage(darrays=darrays), tmp_path / "neg.gii")
    _load_fails(tmp_path / "neg.gii", "face indices")


def test_missing_file_and_non_label_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        shapes.load(tmp_path / "nothing.ply")
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((4, 4, 4)).astype(np.float32), np.eye(4)),
             tmp_path / "t1.nii.gz")
    with pytest.raises(ShapeFileError, match="not a label map"):
        shapes.list_labels(tmp_path / "t1.nii.gz")
    with pytest.raises(ShapeFileError, match="not a label map"):
        shapes.list_labels(_a_mesh(tmp_path))


def _a_mesh(folder):
    path = folder / "tri.ply"
    shapes.Shape(np.eye(3), [[0, 1, 2]]).save(path)
    return path
