"""Model nodes <-> :class:`shapeot.Shape`, in world RAS millimetres.

Conventions
-----------
Slicer's scene is in RAS millimetres, like shapeot. A node under a parent transform is read in
*world* coordinates: the points are moved by the node's transform to world, exactly as
"Harden transform" would move them, on a copy (the node is never modified). Output nodes are
created at the top of the transform hierarchy, so their points are world coordinates too.

Points are stored as float64 in the polydata that these functions create (Slicer's readers use
float32; a Shape -> node -> Shape round trip is exact only with float64). Triangle strips and
polygons of a model are triangulated on reading; the vertex order is kept, so per-vertex
results (a displacement) map one to one onto the input model's vertices. Point-data arrays
travel both ways, except surface normals, which a deformation would invalidate.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for annotations: importing this module never imports shapeot
    from shapeot import Shape

__all__ = [
    "transform_to_world",
    "world_polydata",
    "polydata_from_arrays",
    "polydata_from_shape",
    "arrays_from_polydata",
    "shape_from_polydata",
    "shape_from_model",
    "model_from_shape",
    "add_point_array",
]


def _vtk():
    import vtk
    from vtk.util import numpy_support

    return vtk, numpy_support


def transform_to_world(node):
    """The transform (``vtkGeneralTransform``) from a transformable node to world, or None.

    None when the node has no parent transform. This is the transform that Slicer's "Harden
    transform" applies to the node's data.
    """
    vtk, _ = _vtk()
    parent = node.GetParentTransformNode()
    if parent is None:
        return None
    transform = vtk.vtkGeneralTransform()
    parent.GetTransformToWorld(transform)
    return transform


def world_polydata(polydata, transform):
    """A copy of ``polydata`` moved by ``transform`` (or an unmoved deep copy when None)."""
    vtk, _ = _vtk()
    if transform is None:
        out = vtk.vtkPolyData()
        out.DeepCopy(polydata)
        return out
    moved = vtk.vtkTransformPolyDataFilter()
    moved.SetInputData(polydata)
    moved.SetTransform(transform)
    moved.Update()
    out = vtk.vtkPolyData()
    out.DeepCopy(moved.GetOutput())
    return out


def polydata_from_arrays(points: np.ndarray, faces: np.ndarray | None = None,
                         point_data: Mapping[str, np.ndarray] | None = None):
    """A ``vtkPolyData`` with float64 points (N, 3), triangles (F, 3) and point arrays.

    Parameters
    ----------
    points : (N, 3) float array, mm
    faces : (F, 3) int array or None
        Triangles; None makes a point cloud with one vertex cell per point.
    point_data : mapping of str to (N,) or (N, C) arrays, optional
        Stored as float64 arrays (integers keep an integer type) with C components.
    """
    vtk, ns = _vtk()
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64))
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be (N, 3); got {pts.shape}")
    vpoints = vtk.vtkPoints()
    vpoints.SetDataTypeToDouble()
    vpoints.SetData(ns.numpy_to_vtk(pts, deep=True, array_type=vtk.VTK_DOUBLE))
    poly = vtk.vtkPolyData()
    poly.SetPoints(vpoints)
    cells = vtk.vtkCellArray()
    if faces is not None:
        f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        offsets = np.arange(0, 3 * len(f) + 1, 3, dtype=np.int64)
        cells.SetData(ns.numpy_to_vtkIdTypeArray(offsets, deep=True),
                      ns.numpy_to_vtkIdTypeArray(np.ascontiguousarray(f.ravel()), deep=True))
        poly.SetPolys(cells)
    else:
        n = len(pts)
        cells.SetData(ns.numpy_to_vtkIdTypeArray(np.arange(n + 1, dtype=np.int64), deep=True),
                      ns.numpy_to_vtkIdTypeArray(np.arange(n, dtype=np.int64), deep=True))
        poly.SetVerts(cells)
    for key, value in dict(point_data or {}).items():
        add_point_array(poly, key, value)
    return poly


def add_point_array(polydata, name: str, values: np.ndarray) -> None:
    """Attach (N,) or (N, C) ``values`` to ``polydata`` as the point array ``name`` (replacing it)."""
    vtk, ns = _vtk()
    v = np.asarray(values)
    if len(v) != polydata.GetNumberOfPoints():
        raise ValueError(f"array {name!r} has {len(v)} rows for {polydata.GetNumberOfPoints()} points")
    if v.dtype == bool:
        v = v.astype(np.uint8)
    if not np.issubdtype(v.dtype, np.integer):
        v = v.astype(np.float64)
    v = np.ascontiguousarray(v.reshape(len(v), -1) if v.ndim > 1 else v)
    array = ns.numpy_to_vtk(v, deep=True)
    array.SetName(str(name))
    data = polydata.GetPointData()
    data.RemoveArray(str(name))
    data.AddArray(array)


def _triangulated(polydata):
    """``polydata`` itself when it holds only triangles (or no polygons), else triangulated."""
    vtk, ns = _vtk()
    polys = polydata.GetPolys()
    strips = polydata.GetNumberOfStrips()
    if strips == 0 and polys.GetNumberOfCells():
        sizes = np.diff(ns.vtk_to_numpy(polys.GetOffsetsArray()))
        if np.all(sizes == 3):
            return polydata
    elif strips == 0:
        return polydata
    tri = vtk.vtkTriangleFilter()
    tri.SetInputData(polydata)
    tri.PassVertsOff()
    tri.PassLinesOff()
    tri.Update()
    return tri.GetOutput()


def arrays_from_polydata(polydata) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """(points (N, 3) float64, triangles (F, 3) int64 or None, point arrays) of a polydata.

    Polygons and strips are triangulated (vertex order kept); a polydata without polygons is a
    point cloud (faces None). Numeric point arrays are copied, surface normals skipped.
    """
    _, ns = _vtk()
    if polydata is None or polydata.GetPoints() is None or polydata.GetNumberOfPoints() == 0:
        raise ValueError("the node holds no points (an empty model)")
    poly = _triangulated(polydata)
    points = np.array(ns.vtk_to_numpy(poly.GetPoints().GetData()), dtype=np.float64).reshape(-1, 3)
    faces = None
    if poly.GetNumberOfPolys():
        faces = np.array(ns.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()), dtype=np.int64).reshape(-1, 3)
    data = {}
    pd = poly.GetPointData()
    normals = pd.GetNormals()
    for i in range(pd.GetNumberOfArrays()):
        array = pd.GetArray(i)  # None for string arrays
        if array is None or array.GetName() is None or (normals is not None and array is normals):
            continue
        values = np.array(ns.vtk_to_numpy(array))
        if len(values) == len(points):
            data[array.GetName()] = values
    return points, faces, data


def shape_from_polydata(polydata, *, name: str = "", source=None) -> "Shape":
    """A :class:`shapeot.Shape` (default weights: vertex areas) from a polydata, as stored."""
    from shapeot import Shape

    points, faces, data = arrays_from_polydata(polydata)
    return Shape(points, faces, name=name, source=source, point_data=data)


def polydata_from_shape(shape: "Shape", *, point_data: bool = True):
    """A float64 ``vtkPolyData`` of a Shape: its points, triangles and (optionally) point data."""
    return polydata_from_arrays(shape.points, shape.faces, dict(shape.point_data) if point_data else None)


def shape_from_model(node, *, world: bool = True) -> "Shape":
    """The surface of a ``vtkMRMLModelNode`` as a Shape, in world RAS mm.

    Parameters
    ----------
    node : vtkMRMLModelNode
        Left unchanged.
    world : bool, default: True
        Apply the node's transform to world (as hardening would), on a copy.

    Raises
    ------
    ValueError
        If the model is empty or its geometry is not a valid shape (NaN, ...).
    """
    from shapeot import Shape

    polydata = node.GetPolyData()
    if polydata is None:
        raise ValueError(f"model {node.GetName()!r} holds no surface (it may be an unstructured grid)")
    if world:
        polydata = world_polydata(polydata, transform_to_world(node))
    points, faces, data = arrays_from_polydata(polydata)
    storage = node.GetStorageNode()
    path = storage.GetFileName() if storage is not None else None
    from shapeot.shapes import Source

    return Shape(points, faces, name=node.GetName() or "", point_data=data,
                 source=Source(path) if path else None)


def model_from_shape(scene, shape: "Shape", *, name: str | None = None, point_data: bool = True,
                     color: tuple[float, float, float] | None = None):
    """A new ``vtkMRMLModelNode`` in ``scene`` holding ``shape`` (world coordinates).

    Parameters
    ----------
    scene : vtkMRMLScene
    shape : Shape
    name : str, optional
        Node name; a unique name derived from ``shape.name`` by default.
    point_data : bool, default: True
        Copy ``shape.point_data`` as point arrays.
    color : (r, g, b) in [0, 1], optional
        Display colour.

    Returns
    -------
    vtkMRMLModelNode
        With a display node, no parent transform.
    """
    poly = polydata_from_shape(shape, point_data=point_data)
    base = name or shape.name or "shape"
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", scene.GenerateUniqueName(base) if name is None else name)
    node.SetAndObservePolyData(poly)
    node.CreateDefaultDisplayNodes()
    if color is not None and node.GetDisplayNode() is not None:
        node.GetDisplayNode().SetColor(*color)
    return node
