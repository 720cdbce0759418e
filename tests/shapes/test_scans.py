"""Label maps: surfaces in world RAS coordinates, checked against a ball of known geometry."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import shapeot.shapes as shapes


def _centroid_and_radius(shape, centre):
    """Area-weighted centroid and mean distance to the true centre (mm)."""
    centroid = shape.weights @ shape.points
    radius = shape.weights @ np.linalg.norm(shape.points - centre, axis=1)
    return centroid, radius


def _check_ball(shape, ball, tolerance=None):
    tol = ball.half_voxel if tolerance is None else tolerance
    centroid, radius = _centroid_and_radius(shape, ball.centre)
    assert np.linalg.norm(centroid - ball.centre) < tol
    assert abs(radius - ball.radius) < tol
    assert shape.is_closed


def test_ball_in_nifti_and_nrrd_is_in_world_coordinates_and_identical(ball, tmp_path):
    nii = shapes.load(ball.write_nifti(tmp_path / "ball.nii.gz"), label=ball.label)
    nrrd_ = shapes.load(ball.write_nrrd(tmp_path / "ball.nrrd"), label=ball.label)
    _check_ball(nii, ball)
    _check_ball(nrrd_, ball)
    # Same surface from both files: NRRD's LPS geometry converts to the NIfTI's RAS.
    np.testing.assert_allclose(nrrd_.points, nii.points, atol=1e-6)
    np.testing.assert_array_equal(nrrd_.faces, nii.faces)
    # Outward normals whatever the affine's handedness: positive enclosed volume.
    from shapeot.shapes.geometry import signed_volume

    assert signed_volume(nii.points, nii.faces) == pytest.approx(4 / 3 * np.pi * ball.radius**3, rel=0.03)


def test_ball_in_ras_nrrd_and_mgz(ball, tmp_path):
    import nibabel as nib
    import nrrd

    reference = shapes.load(ball.write_nifti(tmp_path / "ball.nii"), label=ball.label)
    header = {"space": "right-anterior-superior", "space directions": ball.affine[:3, :3].T,
              "space origin": ball.affine[:3, 3], "kinds": ["domain"] * 3}
    nrrd.write(str(tmp_path / "ras.nrrd"), ball.labels, header)
    nib.save(nib.MGHImage(ball.labels.astype(np.int32), ball.affine.astype(np.float32)), tmp_path / "ball.mgz")
    for name in ("ras.nrrd", "ball.mgz"):
        other = shapes.load(tmp_path / name, label=ball.label)
        np.testing.assert_allclose(other.points, reference.points, atol=1e-4)


def _write_mha_by_hand(path, ball, compressed):
    """A MetaImage written from the ITK specification (LPS, TransformMatrix column triplets)."""
    directions, origin = ball.lps_geometry()
    unit = directions / ball.spacing  # direction cosines, one column per axis
    payload = ball.labels.ravel(order="F").tobytes()  # x fastest
    if compressed:
        payload = zlib.compress(payload)
    header = "\n".join([
        "ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
        f"CompressedData = {compressed}",
        "TransformMatrix = " + " ".join(f"{v:.17g}" for v in unit.T.ravel()),
        "Offset = " + " ".join(f"{v:.17g}" for v in origin),
        "CenterOfRotation = 0 0 0", "AnatomicalOrientation = RAI",
        "ElementSpacing = " + " ".join(f"{v:.17g}" for v in ball.spacing),
        "DimSize = " + " ".join(str(n) for n in ball.labels.shape),
        "ElementType = MET_UCHAR", "ElementDataFile = LOCAL",
    ]) + "\n"
    path.write_bytes(header.encode() + payload)
    return path


@pytest.mark.parametrize("compressed", [False, True])
def test_ball_in_metaimage(ball, tmp_path, compressed):
    reference = shapes.load(ball.write_nifti(tmp_path / "ball.nii.gz"), label=ball.label)
    mha = shapes.load(_write_mha_by_hand(tmp_path / "ball.mha", ball, compressed), label=ball.label)
    np.testing.assert_allclose(mha.points, reference.points, atol=1e-6)


def test_metaimage_written_by_simpleitk(ball, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.GetImageFromArray(np.ascontiguousarray(ball.labels.transpose(2, 1, 0)))  # sitk wants z, y, x
    directions, origin = ball.lps_geometry()
    image.SetSpacing(ball.spacing.tolist())
    image.SetDirection((directions / ball.spacing).ravel().tolist())
    image.SetOrigin(origin.tolist())
    reference = shapes.load(ball.write_nifti(tmp_path / "ball.nii.gz"), label=ball.label)
    for name in ("ball.mha", "ball.mhd"):
        sitk.WriteImage(image, str(tmp_path / name), useCompression=name.endswith("mha"))
        shape = shapes.load(tmp_path / name, label=ball.label)
        np.testing.assert_allclose(shape.points, reference.points, atol=1e-6)


def test_slicer_segmentation_names(ball, tmp_path):
    extra = {"Segment0_Name": "tumour", "Segment0_LabelValue": "3", "Segment0_Layer": "0",
             "Segment1_Name": "marker", "Segment1_LabelValue": "7", "Segment1_Layer": "0"}
    path = ball.write_nrrd(tmp_path / "ball.seg.nrrd", extra)
    labels = shapes.list_labels(path)
    assert [(lab.value, lab.name) for lab in labels] == [(3, "tumour"), (7, "marker")]
    assert labels[0].voxels == int((ball.labels == 3).sum())
    assert labels[0].volume_mm3 == pytest.approx(labels[0].voxels * np.prod(ball.spacing))
    by_name = shapes.load(path, label="tumour")
    by_value = shapes.load(path, label=3)
    np.testing.assert_array_equal(by_name.points, by_value.points)
    assert by_name.source == shapes.Source(str(path), "tumour")


def test_surface_nets_smoothing_and_target_count(ball, tmp_path):
    pytest.importorskip("vtkmodules", reason="surface nets need VTK (shapeot[vtk])")
    path = ball.write_nifti(tmp_path / "ball.nii.gz")
    nets = shapes.load(path, label=ball.label, method="surface_nets")
    _check_ball(nets, ball)
    smooth = shapes.load(path, label=ball.label, smooth=1.0, n_points=600)
    assert 450 <= smooth.n_points <= 750
    _check_ball(smooth, ball, tolerance=2 * ball.half_voxel)


def test_label_errors_list_the_labels(ball, tmp_path):
    path = ball.write_nifti(tmp_path / "ball.nii.gz")
    with pytest.raises(shapes.LabelNotFoundError, match=r"label 5 is not in the scan.*3 \(\d+ voxels\).*7") as info:
        shapes.load(path, label=5)
    assert str(path) in str(info.value)
    assert [lab.value for lab in info.value.labels] == [3, 7]
    with pytest.raises(shapes.LabelNotFoundError, match="several labels"):
        shapes.load(path)
    with pytest.raises(shapes.LabelNotFoundError, match="no label named 'liver'"):
        shapes.load(path, label="liver")
    with pytest.raises(ValueError, match="label 5"):
        shapes.load(path, label=5)  # a LabelNotFoundError is a ValueError


def test_layered_slicer_segmentation(ball, tmp_path):
    """Slicer writes overlapping segments as a 4D .seg.nrrd: one layer per group of segments."""
    import nrrd

    directions, origin = ball.lps_geometry()
    layers = np.zeros((2, *ball.labels.shape), np.uint8)
    layers[0][ball.labels == 3] = 1  # the ball on layer 0, value 1
    layers[1][ball.labels == 3] = 1  # an overlapping copy on layer 1 ...
    layers[1][ball.labels == 7] = 2  # ... with a second segment, value 2
    header = {
        "space": "left-posterior-superior",
        "space directions": np.vstack([np.full(3, np.nan), directions.T]),
        "space origin": origin, "kinds": ["list", "domain", "domain", "domain"],
        "Segment0_Name": "ball", "Segment0_LabelValue": "1", "Segment0_Layer": "0",
        "Segment1_Name": "ball copy", "Segment1_LabelValue": "1", "Segment1_Layer": "1",
        "Segment2_Name": "marker", "Segment2_LabelValue": "2", "Segment2_Layer": "1",
    }
    path = tmp_path / "layers.seg.nrrd"
    nrrd.write(str(path), layers, header)
    assert [(lab.name, lab.layer, lab.value) for lab in shapes.list_labels(path)] == [
        ("ball", 0, 1), ("ball copy", 1, 1), ("marker", 1, 2)]
    reference = shapes.load(ball.write_nifti(tmp_path / "ball.nii.gz"), label=3)
    for name in ("ball", "ball copy"):
        np.testing.assert_allclose(shapes.load(path, label=name).points, reference.points, atol=1e-6)
