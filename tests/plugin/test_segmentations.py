r"""A segment's closed surface, made by Slicer from a label map, against shapeot's own scan reader.

The label map (``mni152_tissue_labels_2mm.nii.gz``, 2 mm voxels) is read twice, independently:
by Slicer (ITK's NIfTI reader in ``vtkMRMLVolumeArchetypeStorageNode``, imported into a
segmentation by ``vtkSlicerSegmentationsModuleLogic``, surface by Slicer's converter rule:
discrete flying edges) and by shapeot (nibabel's affine, scikit-image's marching cubes). Both
must agree on the voxel-to-RAS geometry and on the surface.

Tolerances (v = 2 mm, the voxel size):

* without smoothing, both algorithms put every vertex halfway between an inside and an outside
  voxel centre, so the surfaces coincide except in voxel configurations that marching cubes may
  triangulate two ways (the two libraries resolve them differently): mean and 95th percentile
  of the point-to-surface distance below 0.01 v, maximum below 0.5 v (a flipped diagonal of a
  voxel face moves the surface by at most half a voxel);
* with Slicer's default smoothing (0.5: windowed-sinc, pass band 0.01) the staircase is ironed
  out and thin, folded structures shrink a little: mean below 0.5 v and 95th percentile below
  1 v; unsmoothed and smoothed surfaces must also differ (else smoothing was not applied).
"""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import LABELS, assert_unchanged, snapshot

VOXEL = 2.0


def _distances(a, b, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Point-to-surface distances (mm) from samples of a's vertices to b, and of b's to a."""
    from shapeot.metrics.distances import directed_distances

    rng = np.random.default_rng(0)
    ia = rng.choice(a.n_points, min(n, a.n_points), replace=False)
    ib = rng.choice(b.n_points, min(n, b.n_points), replace=False)
    return (directed_distances(a.points[ia], b, surface=True),
            directed_distances(b.points[ib], a, surface=True))


def test_converter_rules_are_registered(slicer_core):
    from ShapeOTLib.segmentations import ensure_converter_rules

    ensure_converter_rules()
    factory = slicer_core.vtkSegmentationConverterFactory.GetInstance()
    names = {rule.GetClassName() for rule in factory.GetConverterRules()}
    assert "vtkBinaryLabelmapToClosedSurfaceConversionRule" in names
    assert ensure_converter_rules() == []  # idempotent: nothing registered twice
    assert len(factory.GetConverterRules()) == len(names)


def test_segments_are_the_labels(segmentation):
    from ShapeOTLib.segmentations import segment_ids

    _, _, node = segmentation
    ids = segment_ids(node)
    assert len(ids) == 2
    seg = node.GetSegmentation()
    assert sorted(seg.GetSegment(i).GetLabelValue() for i, _ in ids) == [1, 2]


def test_unsmoothed_segment_surface_is_shapeots_surface(segmentation):
    from ShapeOTLib.segmentations import shape_from_segment

    from shapeot.shapes import load

    _, _, node = segmentation
    seg = node.GetSegmentation()
    white = next(sid for sid in (seg.GetNthSegmentID(i) for i in range(2)) if seg.GetSegment(sid).GetLabelValue() == 2)
    slicer_surface = shape_from_segment(node, white, smoothing=0.0)
    reference = load(LABELS, label=2)
    assert abs(slicer_surface.n_points - reference.n_points) < 0.02 * reference.n_points
    to_ref, from_ref = _distances(slicer_surface, reference)
    for d in (to_ref, from_ref):
        assert d.mean() < 0.01 * VOXEL and np.percentile(d, 95) < 0.01 * VOXEL
        assert d.max() < 0.5 * VOXEL
    # same place in RAS (a flip or a half-voxel shift would move the extremes by whole voxels)
    for extreme in (np.min, np.max):
        np.testing.assert_allclose(extreme(slicer_surface.points, axis=0), extreme(reference.points, axis=0),
                                   atol=0.01 * VOXEL)
    assert abs(slicer_surface.area - reference.area) < 0.02 * reference.area


def test_default_smoothing_stays_within_a_voxel(segmentation):
    from ShapeOTLib.segmentations import shape_from_segment

    from shapeot.shapes import load

    _, _, node = segmentation
    assert node.GetSegmentation().GetConversionParameter("Smoothing factor") == "0.5"  # Slicer's default
    smooth = shape_from_segment(node, "Label_2")  # by segment name; node's own parameters
    rough = shape_from_segment(node, "Label_2", smoothing=0.0)
    reference = load(LABELS, label=2)
    to_ref, from_ref = _distances(smooth, reference)
    for d in (to_ref, from_ref):
        assert d.mean() < 0.5 * VOXEL and np.percentile(d, 95) < 1.0 * VOXEL
    assert np.abs(smooth.points - rough.points).max() > 0.1 * VOXEL  # the smoothing really ran


def test_input_segmentation_is_not_modified(segmentation):
    from ShapeOTLib.segmentations import shape_from_segment

    _, labelmap, node = segmentation
    before = snapshot(node)
    assert before["closed_surface"] is False
    shape_from_segment(node, "Label_1", smoothing=0.0)
    shape_from_segment(node, "Label_1")
    after = snapshot(node)
    assert_unchanged(before, after)  # no closed surface was added to the input, labelmaps untouched


def test_existing_closed_surface_is_read_as_displayed(slicer_core, segmentation):
    """When the user already shows the segmentation in 3D, that very surface is used."""
    from ShapeOTLib.segmentations import segment_polydata

    _, labelmap, _ = segmentation
    scene = labelmap.GetScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "shown in 3D")
    slicer_core.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, node)
    node.GetSegmentation().SetConversionParameter("Smoothing factor", "0.2")
    assert node.CreateClosedSurfaceRepresentation()
    displayed = node.GetSegmentation().GetSegment("Label_1" if node.GetSegmentation().GetSegment("Label_1")
                                                    else node.GetSegmentation().GetNthSegmentID(0))
    sid = node.GetSegmentation().GetNthSegmentID(0)
    shown = node.GetSegmentation().GetSegment(sid).GetRepresentation("Closed surface")
    read = segment_polydata(node, sid)
    assert displayed is not None and read.GetNumberOfPoints() == shown.GetNumberOfPoints()
    from vtk.util import numpy_support

    np.testing.assert_array_equal(numpy_support.vtk_to_numpy(read.GetPoints().GetData()),
                                  numpy_support.vtk_to_numpy(shown.GetPoints().GetData()))


def test_ambiguous_or_unknown_segment_is_a_clear_error(segmentation):
    from ShapeOTLib.segmentations import shape_from_segment

    _, _, node = segmentation
    with pytest.raises(ValueError, match="several segments"):
        shape_from_segment(node)
    with pytest.raises(ValueError, match="not in"):
        shape_from_segment(node, "no such segment")
