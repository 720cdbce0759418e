"""Fixtures of the Slicer bridge tests: real MRML scenes from the ``slicer-core`` wheel, sample brains.

``plugin/ShapeOT`` is put on ``sys.path`` (as Slicer does for a scripted module), so the tests
import the bridge as Slicer does: ``from ShapeOTLib import nodes``. The MRML classes come from
``slicer-core`` (it pins its own VTK); nothing here needs Qt, a display or a GPU.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugin"
MODULE_DIR = PLUGIN / "ShapeOT"
SAMPLES = ROOT / "sample_meshes"
LABELS = SAMPLES / "mni152_tissue_labels_2mm.nii.gz"

if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))


@pytest.fixture(scope="session")
def slicer_core():
    """The ``slicer`` package of the slicer-core wheel (real MRML classes), or skip."""
    return pytest.importorskip("slicer", reason="the slicer-core wheel (pip install slicer-core) is not installed")


@pytest.fixture
def scene(slicer_core):
    """A fresh, empty MRML scene."""
    s = slicer_core.vtkMRMLScene()
    yield s
    s.Clear(1)


@pytest.fixture(scope="package")
def segmentation(slicer_core):
    """(scene, labelmap node, segmentation node) built the way a Slicer user builds them."""
    from ShapeOTLib.segmentations import ensure_converter_rules

    if not LABELS.exists():
        pytest.skip(f"{LABELS} is missing")
    ensure_converter_rules()
    scene = slicer_core.vtkMRMLScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "tissue labels")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(LABELS))
    assert storage.ReadData(labelmap)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "tissues")
    assert slicer_core.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, node)
    yield scene, labelmap, node
    scene.Clear(1)


def snapshot(node) -> dict:
    """Everything a test needs to prove that a model/markups/segmentation node was not modified."""
    from vtk.util import numpy_support

    out = {"name": node.GetName(), "parent": node.GetTransformNodeID() if hasattr(node, "GetTransformNodeID") else None}
    if node.IsA("vtkMRMLModelNode"):
        poly = node.GetPolyData()
        out["points"] = np.array(numpy_support.vtk_to_numpy(poly.GetPoints().GetData()))
        out["polys"] = np.array(numpy_support.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()))
        pd = poly.GetPointData()
        out["arrays"] = {pd.GetArrayName(i): np.array(numpy_support.vtk_to_numpy(pd.GetArray(i)))
                         for i in range(pd.GetNumberOfArrays())}
        out["mtime"] = poly.GetMTime()
    elif node.IsA("vtkMRMLMarkupsNode"):
        from ShapeOTLib.markups import labels_from_markups, points_from_markups

        out["points"] = points_from_markups(node)
        out["labels"] = labels_from_markups(node)
    elif node.IsA("vtkMRMLSegmentationNode"):
        seg = node.GetSegmentation()
        out["segments"] = [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]
        out["closed_surface"] = seg.ContainsRepresentation("Closed surface")
        out["source"] = seg.GetSourceRepresentationName()
        for sid in out["segments"]:
            image = seg.GetSegment(sid).GetRepresentation(out["source"])
            out[f"labelmap {sid}"] = np.array(numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()))
            out[f"extent {sid}"] = tuple(image.GetExtent())
    return out


def assert_unchanged(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        elif isinstance(value, dict):
            assert value.keys() == after[key].keys(), key
            for k in value:
                np.testing.assert_array_equal(after[key][k], value[k], err_msg=f"{key}[{k}]")
        else:
            assert after[key] == value, key


class Registered:
    """One nonrigid registration through the bridge, shared by the transform and run tests."""

    def __init__(self, scene, source_node, target_node, landmarks_node, target_landmarks_node, before, result, calls,
                 seconds):
        self.scene, self.source_node, self.target_node = scene, source_node, target_node
        self.landmarks_node, self.target_landmarks_node = landmarks_node, target_landmarks_node
        self.before, self.result, self.calls, self.seconds = before, result, calls, seconds


@pytest.fixture(scope="package")
def registered(slicer_core, subject_brain):
    """register_nodes(cohort reference -> cohort subject 01, "nonrigid") on model nodes, with landmarks.

    The source is the cohort's reference surface (fsaverage5 left pial, 2,563 vertices) decimated
    to ~1000 vertices; the landmarks are 27 reference vertices and their true images on subject 01
    (``subject_01_truth.npy``), so the landmark error (TRE) has a ground truth.
    """
    import time

    from ShapeOTLib import markups, nodes, runs

    from shapeot.shapes import load

    reference = load(SAMPLES / "cohort_reference.gii")
    truth = np.load(SAMPLES / "cohort" / "subject_01_truth.npy").astype(np.float64)
    idx = np.arange(0, reference.n_points, 97)
    scene = slicer_core.vtkMRMLScene()
    source = nodes.model_from_shape(scene, reference.decimate(1000), name="reference")
    target = nodes.model_from_shape(scene, subject_brain, name="subject 01")
    marks = markups.markups_from_points(scene, reference.points[idx], name="reference landmarks", locked=False,
                                        labels=[f"L{i}" for i in idx])
    target_marks = markups.markups_from_points(scene, truth[idx], name="subject landmarks", locked=False)
    before = {n.GetName(): snapshot(n) for n in (source, target, marks, target_marks)}
    calls: list[tuple[float, str]] = []
    start = time.perf_counter()
    result = runs.register_nodes(scene, source, target, preset="nonrigid", source_landmarks=marks,
                                 target_landmarks=target_marks, n_correspondences=50,
                                 config_overrides={"prealign": {"starts": 1}},  # the cohort's rotations are < 5 deg
                                 progress=lambda f, m: calls.append((f, m)) or True)
    seconds = time.perf_counter() - start
    yield Registered(scene, source, target, marks, target_marks, before, result, calls, seconds)
    scene.Clear(1)
