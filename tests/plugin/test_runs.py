"""Register and Match on MRML nodes (``ShapeOTLib.runs``): outputs, untouched inputs, cancellation."""
from __future__ import annotations

import numpy as np
import pytest
from vtk.util import numpy_support

from .conftest import assert_unchanged, snapshot


def _point_array(model, name: str) -> np.ndarray:
    array = model.GetPolyData().GetPointData().GetArray(name)
    assert array is not None, f"{model.GetName()} has no point array {name!r}"
    return np.array(numpy_support.vtk_to_numpy(array))


def _node_ids(scene) -> set[str]:
    nodes = scene.GetNodes()
    return {nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems())}


@pytest.mark.slow
def test_warped_model_carries_the_displacement_and_a_colour_map(registered):
    from ShapeOTLib import nodes

    result, reg = registered.result, registered.result.registration
    model = result.warped_model
    assert model is not registered.source_node and model.GetScene() is registered.scene
    assert model.GetParentTransformNode() is None
    warped = nodes.shape_from_model(model)
    np.testing.assert_array_equal(warped.points, reg.warped.points)
    np.testing.assert_array_equal(warped.faces, registered.result.source.faces)
    displacement = _point_array(model, "displacement")
    assert displacement.shape == (warped.n_points, 3)
    np.testing.assert_allclose(displacement, warped.points - result.source.points, atol=1e-12)
    magnitude = _point_array(model, "displacement_magnitude")
    np.testing.assert_allclose(magnitude, np.linalg.norm(displacement, axis=1), atol=1e-12)
    np.testing.assert_allclose(_point_array(model, "correspondence_target"), reg.correspondences.target_points)
    display = model.GetDisplayNode()
    assert display.GetScalarVisibility() and display.GetActiveScalarName() == "displacement_magnitude"
    color = registered.scene.GetNodeByID(display.GetColorNodeID())
    assert color is not None and color.IsA("vtkMRMLColorTableNode") and color.GetNumberOfColors() == 256
    assert display.GetScalarRange() == pytest.approx((0.0, magnitude.max()))


def test_inputs_are_unchanged(registered):
    for node in (registered.source_node, registered.target_node, registered.landmarks_node,
                 registered.target_landmarks_node):
        assert registered.scene.GetNodeByID(node.GetID()) is node
        assert_unchanged(registered.before[node.GetName()], snapshot(node))
        assert node.GetParentTransformNode() is None


def test_landmarks_are_carried_through_the_deformation(registered):
    from ShapeOTLib.markups import labels_from_markups, points_from_markups

    reg = registered.result.registration
    node = registered.result.landmarks
    assert node is not None and node is not registered.landmarks_node
    source_marks = points_from_markups(registered.landmarks_node)
    np.testing.assert_allclose(points_from_markups(node), reg.deformation.apply(source_marks), atol=1e-9)
    assert labels_from_markups(node) == labels_from_markups(registered.landmarks_node)
    assert node.GetLocked()
    after = reg.metrics["after"]
    # true landmark pairs (the cohort's ground truth): the registration brings them together
    assert reg.metrics["before"]["tre_mean"] > 5.0 and after["tre_mean"] < 0.5 * reg.metrics["before"]["tre_mean"]


def test_correspondences_are_matched_target_points(registered):
    from ShapeOTLib.markups import points_from_markups, spread_indices

    reg = registered.result.registration
    node = registered.result.correspondences
    assert node.GetNumberOfControlPoints() == 50
    idx = spread_indices(reg.source.points, 50)
    assert len(set(idx.tolist())) == 50
    np.testing.assert_allclose(points_from_markups(node), reg.correspondences.target_points[idx], atol=1e-9)
    assert node.GetNthControlPointLabel(0) == f"c{idx[0]}"
    assert str(idx[0]) in node.GetNthControlPointDescription(0)


def test_progress_is_monotone_reaches_one_and_names_the_stages(registered):
    fractions = [f for f, _ in registered.calls]
    messages = " | ".join(m for _, m in registered.calls)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions) and all(b >= a for a, b in zip(fractions, fractions[1:]))
    for stage in ("reading", "pre-alignment", "non-rigid", "transform", "creating the output nodes"):
        assert stage in messages
    assert "error at the source vertices up to" in registered.result.summary()


def test_cancelling_removes_every_node_the_run_added(scene, small_brain, subject_brain):
    from ShapeOTLib import nodes, runs

    from shapeot.core.errors import Cancelled

    source = nodes.model_from_shape(scene, small_brain.decimate(400), name="source")
    target = nodes.model_from_shape(scene, subject_brain.decimate(400), name="target")
    before = _node_ids(scene)
    seen = []

    def stop_when(stage):
        def callback(fraction, message):
            if stage in message:
                seen.append(len(_node_ids(scene)))
                return False
            return True
        return callback

    fast = {"prealign": {"starts": 1}, "compute_metrics": False}
    with pytest.raises(Cancelled):  # after the transform node exists: it must be removed again
        runs.register_nodes(scene, source, target, preset="rigid", config_overrides=fast,
                            progress=stop_when("creating the output nodes"))
    assert seen and seen[0] > len(before)  # the transform node existed when the user cancelled
    assert _node_ids(scene) == before
    with pytest.raises(Cancelled):  # inside shapeot.register
        runs.register_nodes(scene, source, target, preset="rigid", config_overrides=fast,
                            progress=stop_when("pre-alignment"))
    assert _node_ids(scene) == before


def test_a_working_resolution_still_moves_every_source_vertex(scene, brain_full, subject_brain):
    """max_points is the registration's working resolution: shapeot.register reduces the surfaces
    for its stages and moves every vertex of the full source itself; the module neither
    decimates nor re-applies the map."""
    from ShapeOTLib import nodes, runs
    from ShapeOTLib.transforms import transform_points

    full = brain_full.decimate(3000)
    source = nodes.model_from_shape(scene, full, name="source")
    target = nodes.model_from_shape(scene, subject_brain, name="target")
    result = runs.register_nodes(scene, source, target, preset="rigid", max_points=400, n_correspondences=20,
                                 config_overrides={"prealign": {"starts": 1}, "compute_metrics": False})
    reg = result.registration
    assert reg.config.working_points == 400 and reg.source.n_points == full.n_points
    warped = nodes.shape_from_model(result.warped_model)
    assert warped.n_points == full.n_points
    np.testing.assert_allclose(warped.points, reg.deformation.apply(full.points), atol=1e-9)
    assert result.transform_node.IsA("vtkMRMLLinearTransformNode") and result.transform_report.kind == "linear"
    np.testing.assert_allclose(transform_points(result.transform_node, full.points), warped.points, atol=1e-6)
    data = result.warped_model.GetPolyData().GetPointData()
    names = [data.GetArrayName(i) for i in range(data.GetNumberOfArrays())]
    assert "correspondence_target" in names  # the correspondences of every vertex
    label = result.correspondences.GetNthControlPointLabel(0)
    assert label.startswith("c") and 0 <= int(label[1:]) < full.n_points


def test_nonrigid_registration_at_a_working_resolution_reports_the_error_at_every_vertex(
        scene, brain_full, subject_brain, slicer_core):
    from ShapeOTLib import nodes, runs

    full = brain_full.decimate(1500)
    source = nodes.model_from_shape(scene, full, name="source")
    target = nodes.model_from_shape(scene, subject_brain, name="target")
    result = runs.register_nodes(scene, source, target, preset="nonrigid", max_points=400, n_correspondences=0,
                                 config_overrides={"prealign": {"starts": 1}, "compute_metrics": False})
    assert result.correspondences is None and result.transform_node.IsA("vtkMRMLGridTransformNode")
    warped = nodes.shape_from_model(result.warped_model)
    np.testing.assert_allclose(warped.points, result.registration.deformation.apply(full.points), atol=1e-9)
    # harden a copy of the full-resolution source: the report states that error, at every vertex
    copy = nodes.model_from_shape(scene, full, name="copy")
    copy.SetAndObserveTransformNodeID(result.transform_node.GetID())
    slicer_core.vtkSlicerTransformLogic.hardenTransform(copy)
    err = np.linalg.norm(nodes.shape_from_model(copy).points - warped.points, axis=1)
    assert result.transform_report.max_error_mm == pytest.approx(err.max(), rel=1e-6)
    assert err.max() < 1.0 and err.mean() < 0.1


def test_match_a_segment_onto_itself_is_the_identity(segmentation):
    """Oracle: OT from a surface to itself (same sampling) moves nothing, up to the blur."""
    from ShapeOTLib import runs

    scene, _, node = segmentation
    before = snapshot(node)
    result = runs.match_nodes(scene, node, node, source_segment="Label_2", target_segment="Label_2",
                              max_points=500, n_correspondences=30)
    model = result.model
    n = result.source.n_points
    assert 400 < n < 600 and model.GetPolyData().GetNumberOfPoints() == n
    target = _point_array(model, "ot_target")
    np.testing.assert_allclose(target, result.matching.target_points)
    np.testing.assert_allclose(_point_array(model, "ot_displacement"), target - result.source.points, atol=1e-9)
    shift = _point_array(model, "ot_displacement_magnitude")
    blur = 0.01 * result.source.diameter  # shapeot.match's default blur
    # Weighted by vertex area: the decimated surface has vertices of (numerically) zero area,
    # whose OT image is undefined (no mass to move), see the module README.
    w = result.source.weights
    assert w @ shift < 0.1 * blur and np.median(shift) < 0.1 * blur
    assert w @ (_point_array(model, "ot_target_index") == np.arange(n)) > 0.95  # each vertex onto itself
    assert _point_array(model, "ot_mass").sum() == pytest.approx(1.0, abs=0.02)  # balanced OT, to its marginal error
    assert result.correspondences.GetNumberOfControlPoints() == 30
    assert model.GetDisplayNode().GetActiveScalarName() == "ot_displacement_magnitude"
    assert_unchanged(before, snapshot(node))


def test_inputs_that_are_not_surfaces_are_refused(scene, small_brain):
    from ShapeOTLib import markups, nodes, runs

    model = nodes.model_from_shape(scene, small_brain, name="model")
    points = markups.markups_from_points(scene, small_brain.points[:5], name="points")
    before = _node_ids(scene)
    with pytest.raises(TypeError, match="model or a segmentation"):
        runs.register_nodes(scene, points, model)
    with pytest.raises(ValueError, match="no input node"):
        runs.match_nodes(scene, None, model)
    assert _node_ids(scene) == before
