"""Model nodes <-> shapeot.Shape on real MRML nodes (slicer-core)."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import assert_unchanged, snapshot


def test_shape_model_shape_round_trip_is_exact(scene, small_brain):
    from ShapeOTLib import nodes

    rng = np.random.default_rng(0)
    n = small_brain.n_points
    shape = small_brain.replace(point_data={"thickness": rng.random(n), "vector": rng.normal(size=(n, 3)),
                                            "label": rng.integers(0, 5, n)}, weights=small_brain.weights)
    node = nodes.model_from_shape(scene, shape, name="brain")
    assert node.GetScene() is scene and node.GetDisplayNode() is not None
    assert node.GetPolyData().GetPoints().GetDataType() == 11  # VTK_DOUBLE: no float32 rounding
    back = nodes.shape_from_model(node)
    np.testing.assert_array_equal(back.points, shape.points)
    np.testing.assert_array_equal(back.faces, shape.faces)
    assert back.name == "brain" and back.units == "mm"
    np.testing.assert_allclose(back.weights, shape.weights, rtol=1e-12)  # vertex areas, recomputed
    assert set(back.point_data) == {"thickness", "vector", "label"}
    for key in shape.point_data:
        np.testing.assert_array_equal(back.point_data[key], shape.point_data[key])
        assert back.point_data[key].shape == shape.point_data[key].shape


def test_model_read_by_slicer_matches_shapeot_reader(scene, small_brain, tmp_path, slicer_core):
    """A file read by Slicer's own model reader gives the shape shapeot reads from the same file."""
    from ShapeOTLib import nodes

    from shapeot.shapes import load

    path = tmp_path / "brain.ply"
    small_brain.save(path)
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", "from file")
    storage = scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    storage.SetFileName(str(path))
    storage.SetCoordinateSystem(slicer_core.vtkMRMLStorageNode.CoordinateSystemRAS)  # shapeot writes RAS
    assert storage.ReadData(node)
    read_by_slicer = nodes.shape_from_model(node)
    read_by_shapeot = load(path)
    np.testing.assert_allclose(read_by_slicer.points, read_by_shapeot.points, atol=1e-4)  # PLY stores float32
    np.testing.assert_array_equal(read_by_slicer.faces, read_by_shapeot.faces)
    assert read_by_slicer.source is not None and read_by_slicer.source.path == str(path)


def test_parent_transform_is_applied_and_the_node_is_left_alone(scene, small_brain, slicer_core):
    import vtk
    from ShapeOTLib import nodes

    node = nodes.model_from_shape(scene, small_brain, name="moved")
    matrix = vtk.vtkMatrix4x4()
    angle = np.deg2rad(30.0)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    for i in range(3):
        for j in range(3):
            matrix.SetElement(i, j, rot[i, j])
        matrix.SetElement(i, 3, (5.0, -7.0, 11.0)[i])
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "t")
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    before = snapshot(node)
    world = nodes.shape_from_model(node)
    local = nodes.shape_from_model(node, world=False)
    np.testing.assert_allclose(world.points, small_brain.points @ rot.T + [5.0, -7.0, 11.0], atol=1e-9)
    np.testing.assert_array_equal(local.points, small_brain.points)
    assert_unchanged(before, snapshot(node))
    assert node.GetTransformNodeID() == transform.GetID()


def test_polygons_are_triangulated_and_vertex_clouds_have_no_faces(scene):
    import vtk
    from ShapeOTLib import nodes

    square = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    for p in [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0.5, 0.5, 1)]:
        pts.InsertNextPoint(*p)
    square.SetPoints(pts)
    polys = vtk.vtkCellArray()
    polys.InsertNextCell(4, [0, 1, 2, 3])  # a quad
    polys.InsertNextCell(3, [0, 1, 4])
    square.SetPolys(polys)
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", "quad")
    node.SetAndObservePolyData(square)
    shape = nodes.shape_from_model(node)
    assert shape.faces.shape == (3, 3)  # quad -> 2 triangles, + 1
    assert shape.n_points == 5 and abs(shape.area - (1.0 + np.sqrt(1.25) / 2)) < 1e-12

    cloud = nodes.polydata_from_arrays(np.eye(3))
    node2 = scene.AddNewNodeByClass("vtkMRMLModelNode", "cloud")
    node2.SetAndObservePolyData(cloud)
    shape2 = nodes.shape_from_model(node2)
    assert shape2.faces is None and shape2.n_points == 3


def test_empty_model_is_a_clear_error(scene):
    from ShapeOTLib import nodes

    node = scene.AddNewNodeByClass("vtkMRMLModelNode", "empty")
    with pytest.raises(ValueError, match="empty|no surface"):
        nodes.shape_from_model(node)


@pytest.mark.parametrize("suffix", [".vtk", ".vtp"])
def test_slicer_reads_shapeot_vtk_files_as_ras_untold(scene, small_brain, tmp_path, slicer_core, suffix):
    """shapeot tags .vtk/.vtp as RAS, so Slicer's reader (LPS by default) does not mirror them."""
    from ShapeOTLib import nodes

    path = tmp_path / f"brain{suffix}"
    small_brain.save(path)
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", "untold")
    storage = scene.AddNewNodeByClass("vtkMRMLModelStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    np.testing.assert_allclose(nodes.shape_from_model(node).points, small_brain.points, atol=1e-4)
