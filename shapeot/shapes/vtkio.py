"""VTK-backed conversion and file I/O (VTK legacy ``.vtk`` and XML ``.vtp`` polydata).

VTK is optional (``pip install shapeot[vtk]``; 3D Slicer ships its own): it is imported inside
these functions only, and a missing VTK raises :class:`MissingDependencyError` saying how to
install it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from .errors import MissingDependencyError, ShapeFileError
from .geometry import triangulate

__all__ = ["import_vtk", "arrays_to_polydata", "polydata_to_arrays", "read_polydata", "write_polydata"]


def import_vtk(purpose: str) -> SimpleNamespace:
    """The VTK classes shapeot uses (``vtkSurfaceNets3D`` from VTK 9.3 on), imported now.

    Parameters
    ----------
    purpose : str
        What needs VTK, for the error message (e.g. "reading .vtp files").

    Raises
    ------
    MissingDependencyError
        If VTK is not installed; the message names ``pip install shapeot[vtk]``.
    """
    try:
        from vtkmodules import (
            vtkCommonCore,
            vtkCommonDataModel,
            vtkFiltersCore,
            vtkFiltersGeometry,
            vtkIOLegacy,
            vtkIOXML,
        )
        from vtkmodules.util import numpy_support
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs VTK, which is not installed: pip install 'shapeot[vtk]'"
        ) from exc
    return _namespace(vtkCommonCore, vtkCommonDataModel, vtkFiltersCore, vtkFiltersGeometry, vtkIOLegacy,
                      vtkIOXML, numpy_support)


@functools.lru_cache(maxsize=1)
def _namespace(*modules) -> SimpleNamespace:
    *modules, numpy_support = modules
    ns = SimpleNamespace(numpy_support=numpy_support)
    for module in modules:
        for name in dir(module):
            if name.startswith(("vtk", "VTK_")):
                setattr(ns, name, getattr(module, name))
    return ns


def _cell_array(vtk: SimpleNamespace, cells: np.ndarray):
    """A vtkCellArray of fixed-size cells from an (C, k) index array."""
    ns = vtk.numpy_support
    k = cells.shape[1]
    offsets = np.arange(0, (len(cells) + 1) * k, k, dtype=np.int64)
    arr = vtk.vtkCellArray()
    arr.SetData(
        ns.numpy_to_vtk(offsets, deep=True, array_type=vtk.VTK_ID_TYPE),
        ns.numpy_to_vtk(np.ascontiguousarray(cells, dtype=np.int64).ravel(), deep=True, array_type=vtk.VTK_ID_TYPE),
    )
    return arr


def arrays_to_polydata(
    points: np.ndarray, faces: np.ndarray | None, point_data: Mapping[str, np.ndarray] | None = None
):
    """Build a ``vtkPolyData``: triangles for a mesh, one vertex cell per point for a cloud.

    Parameters
    ----------
    points : (N, 3) float array
    faces : (F, 3) int array or None
    point_data : mapping of str to (N, ...) arrays, optional
    """
    vtk = import_vtk("converting to VTK polydata")
    ns = vtk.numpy_support
    poly = vtk.vtkPolyData()
    vpts = vtk.vtkPoints()
    vpts.SetData(ns.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True))
    poly.SetPoints(vpts)
    if faces is None:
        poly.SetVerts(_cell_array(vtk, np.arange(len(points), dtype=np.int64)[:, None]))
    else:
        poly.SetPolys(_cell_array(vtk, np.asarray(faces)))
    for key, value in (point_data or {}).items():
        value = np.ascontiguousarray(value)
        if value.dtype == bool:
            value = value.astype(np.uint8)
        arr = ns.numpy_to_vtk(value.reshape(len(points), -1) if value.ndim > 1 else value, deep=True)
        arr.SetName(key)
        poly.GetPointData().AddArray(arr)
    return poly


def polydata_to_arrays(poly) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """Points, triangles (polygons fanned, strips split) and named point arrays of a polydata.

    Returns
    -------
    points : (N, 3) float64 array
    faces : (F, 3) int64 array, or None when the polydata has no polygons (a point cloud)
    point_data : dict of str to (N, ...) arrays
    """
    vtk = import_vtk("reading VTK polydata")
    ns = vtk.numpy_support
    if poly.GetNumberOfPoints() == 0:
        return np.zeros((0, 3)), None, {}
    points = ns.vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
    if poly.GetNumberOfStrips():
        tri = vtk.vtkTriangleFilter()
        tri.SetInputData(poly)
        tri.PassVertsOff()
        tri.PassLinesOff()
        tri.Update()
        poly = tri.GetOutput()
    faces = None
    if poly.GetNumberOfPolys():
        cells = poly.GetPolys()
        offsets = ns.vtk_to_numpy(cells.GetOffsetsArray()).astype(np.int64)
        conn = ns.vtk_to_numpy(cells.GetConnectivityArray()).astype(np.int64)
        sizes = np.diff(offsets)
        blocks = []
        for k in np.unique(sizes):
            starts = offsets[:-1][sizes == k]
            blocks.append((np.flatnonzero(sizes == k), conn[starts[:, None] + np.arange(k)]))
        # Fan each polygon size separately, then restore the file's polygon order.
        tris, owner = [], []
        for idx, block in blocks:
            t = triangulate([block])
            tris.append(t)
            owner.append(np.repeat(idx, max(int(block.shape[1]) - 2, 0)))
        owner = np.concatenate(owner)
        faces = np.concatenate(tris)[np.argsort(owner, kind="stable")]
    data = {}
    pd = poly.GetPointData()
    for i in range(pd.GetNumberOfArrays()):
        arr = pd.GetAbstractArray(i)
        name = arr.GetName()
        if not name or not hasattr(arr, "GetNumberOfComponents"):
            continue
        try:
            data[name] = ns.vtk_to_numpy(arr).copy()
        except (TypeError, ValueError, AttributeError):
            continue  # string arrays and the like have no place in a Shape
    return points, faces, data


class _ErrorCatcher:
    """Collects VTK error events (instead of letting VTK print them) so we can raise."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, algorithm) -> None:
        from vtkmodules.util.misc import calldata_type
        from vtkmodules.vtkCommonCore import VTK_STRING

        @calldata_type(VTK_STRING)  # tells VTK to pass the error text as the third argument
        def on_event(obj, event, text=None):
            self.messages.append(str(text or event))

        # With an observer attached, VTK reports through it and prints nothing itself.
        algorithm.AddObserver("ErrorEvent", on_event)
        algorithm.AddObserver("WarningEvent", on_event)


@contextlib.contextmanager
def _vtk_messages(vtk: SimpleNamespace):
    """Collect every error and warning VTK reports while the block runs (also those of readers'
    internal helpers, which bypass observers) instead of letting VTK print them; yields a list
    that holds the messages once the block has ended."""
    collected: list[str] = []
    window = vtk.vtkStringOutputWindow()
    previous = vtk.vtkOutputWindow.GetInstance()
    previous.Register(None)  # keep it alive while it is not the instance
    logger = getattr(vtk, "vtkLogger", None)
    verbosity = logger.GetCurrentVerbosityCutoff() if logger is not None else None
    shown = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkOutputWindow.SetInstance(window)
    vtk.vtkObject.GlobalWarningDisplayOn()
    if logger is not None:
        logger.SetStderrVerbosity(logger.VERBOSITY_OFF)
    try:
        yield collected
    finally:
        vtk.vtkOutputWindow.SetInstance(previous)
        previous.UnRegister(None)
        vtk.vtkObject.SetGlobalWarningDisplay(shown)
        if logger is not None:
            logger.SetStderrVerbosity(verbosity)
        text = window.GetOutput() or ""
        collected.extend(m.strip() for m in re.split(r"\n\s*\n", text) if m.strip())


def _legacy_promise(path: str) -> tuple[int | None, int]:
    """(points, polygons + strips) that a legacy .vtk file declares (None: no POINTS line found)."""
    with open(path, "rb") as fh:
        data = fh.read()
    m = re.search(rb"(?m)^POINTS\s+(\d+)", data)
    n_points = int(m.group(1)) if m else None
    n_polys = sum(int(m.group(2)) for m in re.finditer(rb"(?m)^(POLYGONS|TRIANGLE_STRIPS)\s+(\d+)", data))
    return n_points, n_polys


def _field_string(poly, name: str) -> str | None:
    fd = poly.GetFieldData()
    arr = fd.GetAbstractArray(name) if fd is not None else None
    if arr is None or arr.GetNumberOfValues() < 1 or not hasattr(arr, "GetValue"):
        return None
    return str(arr.GetValue(0))


def read_polydata(path: str | os.PathLike, fmt: str):
    """Read a ``.vtk`` (legacy) or ``.vtp`` (XML) file as arrays; see :func:`polydata_to_arrays`.

    Returns
    -------
    points, faces, point_data
        As :func:`polydata_to_arrays`.
    meta : dict
        ``{"units": ...}`` when the file has a ``UNITS`` string in its field data (shapeot
        writes one).

    Raises
    ------
    ShapeFileError
        If VTK reports any error while reading (a NaN in an ASCII file, truncated binary data,
        ...; VTK leaves the rest of its arrays uninitialised then), if a legacy file holds
        fewer points or polygons than its header declares, or if the file holds no points.
    """
    vtk = import_vtk(f"reading .{fmt} files")
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(256).lstrip()
    # Check the signature first: VTK's readers print pages of errors on a foreign file.
    if fmt == "vtp" and not (head.startswith(b"<?xml") or head.startswith(b"<VTKFile")):
        raise ShapeFileError(path, "is not a VTK XML file (no <VTKFile> header)")
    if fmt == "vtk" and not head.startswith(b"# vtk DataFile"):
        raise ShapeFileError(path, "is not a VTK legacy file (no '# vtk DataFile' header)")
    if fmt == "vtp":
        reader = vtk.vtkXMLPolyDataReader()
    else:
        reader = vtk.vtkGenericDataObjectReader()
    catcher = _ErrorCatcher()
    catcher.watch(reader)
    reader.SetFileName(path)
    with _vtk_messages(vtk) as printed:
        reader.Update()
    out = reader.GetOutput() if fmt == "vtp" else reader.GetOutputDataObject(0)
    errors = [m for m in catcher.messages + printed if m and ("error" in m.lower() or "unrecognized" in m.lower())]
    if errors:
        # VTK stops at the first bad value and leaves the rest uninitialised: never use the output.
        text = " ".join(" ".join(m.split()) for m in errors)
        raise ShapeFileError(path, f"VTK could not read it as .{fmt} (corrupt, truncated, or a NaN/inf value in an "
                                   f"ASCII file): {text[:300]}")
    if out is None:
        raise ShapeFileError(path, f"VTK could not read it as .{fmt}: no data")
    if not isinstance(out, vtk.vtkPolyData):
        if not hasattr(out, "GetNumberOfCells"):
            raise ShapeFileError(path, f"holds a {out.GetClassName()}, not a surface")
        geom = vtk.vtkGeometryFilter()
        geom.SetInputData(out)
        geom.MergingOff()
        geom.Update()
        out = geom.GetOutput()
    elif fmt == "vtk":
        n_points, n_polys = _legacy_promise(path)
        got = out.GetNumberOfPoints()
        if n_points is not None and got != n_points:
            raise ShapeFileError(path, f"the header declares {n_points} points but VTK read {got}: the file is "
                                       "truncated or corrupt")
        if n_polys and out.GetNumberOfPolys() + out.GetNumberOfStrips() != n_polys:
            raise ShapeFileError(path, f"the header declares {n_polys} polygons but VTK read "
                                       f"{out.GetNumberOfPolys() + out.GetNumberOfStrips()}: the file is truncated "
                                       "or corrupt")
    units = _field_string(out, "UNITS")
    points, faces, data = polydata_to_arrays(out)
    return points, faces, data, ({"units": units} if units else {})


def write_polydata(
    path: str | os.PathLike,
    fmt: str,
    points: np.ndarray,
    faces: np.ndarray | None,
    point_data: Mapping[str, np.ndarray],
    units: str | None = None,
) -> None:
    """Write arrays as binary ``.vtk`` (legacy 4.2, read by every VTK and by meshio) or ``.vtp``.

    ``units`` (e.g. "mm") is stored as a ``UNITS`` string in the field data and read back by
    :func:`read_polydata`.
    """
    vtk = import_vtk(f"writing .{fmt} files")
    poly = arrays_to_polydata(points, faces, point_data)
    # 3D Slicer reads a mesh as LPS (x and y negated) unless the file says RAS: a "SPACE" string
    # in the field data (.vtp) or "SPACE=RAS" in the legacy header (vtkMRMLModelStorageNode).
    # shapeot's coordinates are RAS, so say so.
    space = vtk.vtkStringArray()
    space.SetName("SPACE")
    space.InsertNextValue("RAS")
    poly.GetFieldData().AddArray(space)
    if units:
        unit = vtk.vtkStringArray()
        unit.SetName("UNITS")
        unit.InsertNextValue(str(units))
        poly.GetFieldData().AddArray(unit)
    if fmt == "vtp":
        writer = vtk.vtkXMLPolyDataWriter()
        writer.SetDataModeToAppended()
    else:
        writer = vtk.vtkPolyDataWriter()
        writer.SetHeader("shapeot SPACE=RAS")
        writer.SetFileTypeToBinary()
        if hasattr(writer, "SetFileVersion"):
            writer.SetFileVersion(42)  # 5.1 is not read by older VTK, Slicer 4.x or meshio
    catcher = _ErrorCatcher()
    catcher.watch(writer)
    writer.SetFileName(os.fspath(path))
    writer.SetInputData(poly)
    ok = writer.Write()
    if not ok or catcher.messages:
        raise ShapeFileError(path, f"VTK could not write it: {' '.join(catcher.messages)[:300]}")
