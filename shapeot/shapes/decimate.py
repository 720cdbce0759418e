"""Reduce the number of points of a mesh or a point cloud (used by ``Shape.decimate``)."""
from __future__ import annotations

import numpy as np

from shapeot.core.pooling import cluster_points

from .geometry import clean_mesh

__all__ = ["decimate_arrays"]


def _quadric_vtk(points: np.ndarray, faces: np.ndarray, n_points: int, progress=None):
    from . import vtkio

    vtk = vtkio.import_vtk("mesh decimation")
    poly = vtkio.arrays_to_polydata(points, faces)
    dec = vtk.vtkQuadricDecimation()
    if progress is not None:  # VTK reports its progress; the callback may raise to cancel
        errors = []

        def report(obj, _event):
            if errors:
                return
            try:
                progress(float(obj.GetProgress()))
            except BaseException as exc:  # noqa: BLE001 - re-raised once VTK has stopped
                errors.append(exc)
                obj.SetAbortExecute(1)

        dec.AddObserver("ProgressEvent", report)
    dec.SetInputData(poly)
    # For a triangulated surface F ~ 2V, so the face reduction equals the vertex reduction.
    dec.SetTargetReduction(float(np.clip(1.0 - n_points / len(points), 0.0, 0.999)))
    dec.VolumePreservationOn()
    dec.Update()
    if progress is not None and errors:
        raise errors[0]
    pts, polys, _ = vtkio.polydata_to_arrays(dec.GetOutput())
    return pts, polys


def decimate_arrays(
    points: np.ndarray, faces: np.ndarray | None, n_points: int, progress=None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Decimate a mesh (quadric error with VTK, else vertex clustering) or a point cloud.

    Parameters
    ----------
    points : (N, 3) float array
        Positions (mm).
    faces : (F, 3) int array or None
        Triangles, or None for a point cloud.
    n_points : int
        Target number of points (< N).

    Returns
    -------
    points : (M, 3) float64 array
    faces : (F', 3) int64 array or None
    nearest : (M,) int64 array
        Index of the closest input point to each output point (to carry point data over).
    """
    from scipy.spatial import cKDTree

    from .errors import MissingDependencyError

    new_faces = None
    new_points = None
    if faces is not None:
        try:
            new_points, new_faces = _quadric_vtk(points, faces, n_points, progress)
        except MissingDependencyError:
            new_points = None
    if new_points is None:
        labels = cluster_points(points, n_points)
        k = int(labels.max()) + 1
        counts = np.bincount(labels, minlength=k)[:, None]
        new_points = np.stack(
            [np.bincount(labels, weights=points[:, d], minlength=k) for d in range(3)], axis=1
        ) / counts
        if faces is not None:
            f = labels[faces]
            f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
            # Two clusters can be joined by several original triangles: keep one copy of each.
            _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
            new_faces = f[np.sort(first)]
    if new_faces is not None:
        new_points, new_faces, _ = clean_mesh(new_points, new_faces)
    _, nearest = cKDTree(points).query(new_points)
    return new_points, new_faces, np.asarray(nearest, dtype=np.int64)
