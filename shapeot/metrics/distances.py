r"""Distances between two shapes: Chamfer, Hausdorff and HD95, point-to-point or point-to-surface.

For point sets A, B and the directed distances d_A(i) = min_{b in B} |a_i - b| (a KD-tree,
``scipy.spatial.cKDTree``) or, point-to-surface, d_A(i) = distance from a_i to the nearest point
of B's triangles (:func:`closest_points_on_surface`, libigl's AABB tree):

* symmetric Chamfer distance (mean):  (mean_i d_A(i) + mean_j d_B(j)) / 2;
* Hausdorff distance:                 max(max_i d_A(i), max_j d_B(j));
* HD95:                               max(95th percentile of d_A, 95th percentile of d_B),
  the robust Hausdorff distance of segmentation challenges.

Point-to-surface distances make two samplings of one surface score ~0, whereas point-to-point
distances between them are about half the mesh's edge length. All values are in the shapes'
units (mm). Means are over vertices (not area-weighted), as in the usual definitions.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["closest_points_on_surface", "directed_distances", "chamfer", "hausdorff", "hd95", "DistanceSummary",
           "distance_summary"]


def _points_faces(shape) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(shape, "points"):
        return np.asarray(shape.points, dtype=np.float64), shape.faces
    return np.asarray(shape, dtype=np.float64), None


def directed_distances(points: np.ndarray, other, *, surface: bool = False, check=lambda: None) -> np.ndarray:
    """(N,) distance from each point to ``other`` (mm).

    Parameters
    ----------
    points : (N, 3) float array
    other : Shape or (M, 3) float array
        The reference: its vertices, or with ``surface=True`` its triangles (a mesh Shape).
    surface : bool, default: False
        Distance to the nearest point of ``other``'s surface instead of its nearest vertex.
    check : callable, optional
        Called every few thousand points (progress; it may raise to cancel).
    """
    pts = np.asarray(points, dtype=np.float64)
    opts, ofaces = _points_faces(other)
    if surface:
        if ofaces is None or len(ofaces) == 0:
            raise ValueError("point-to-surface distances need a triangle mesh as the reference")
        return closest_points_on_surface(pts, opts, ofaces, check=check)[1]
    from scipy.spatial import cKDTree

    return cKDTree(opts).query(pts, workers=-1)[0]


def _both(a, b, surface: bool, check=lambda: None) -> tuple[np.ndarray, np.ndarray]:
    pa, _ = _points_faces(a)
    pb, _ = _points_faces(b)
    return (directed_distances(pa, b, surface=surface, check=check),
            directed_distances(pb, a, surface=surface, check=check))


def chamfer(a, b, *, surface: bool = False) -> float:
    """Symmetric mean Chamfer distance between ``a`` and ``b`` (Shapes or (N, 3) arrays), mm."""
    da, db = _both(a, b, surface)
    return 0.5 * (float(da.mean()) + float(db.mean()))


def hausdorff(a, b, *, surface: bool = False) -> float:
    """Symmetric Hausdorff distance (mm): the largest directed distance either way."""
    da, db = _both(a, b, surface)
    return max(float(da.max()), float(db.max()))


def hd95(a, b, *, surface: bool = False) -> float:
    """Robust Hausdorff distance (mm): the larger of the two directed 95th percentiles."""
    da, db = _both(a, b, surface)
    return max(float(np.percentile(da, 95)), float(np.percentile(db, 95)))


class DistanceSummary(NamedTuple):
    """Distances between two shapes (mm); ``*_surface`` are point-to-surface (None for clouds)."""

    chamfer: float
    hausdorff: float
    hd95: float
    chamfer_surface: float | None
    hausdorff_surface: float | None
    hd95_surface: float | None


def distance_summary(a, b, check=lambda: None) -> DistanceSummary:
    """Every distance of this module at once, sharing the nearest-neighbour queries.
    ``check()`` is called every few thousand points (progress; it may raise to cancel)."""
    da, db = _both(a, b, False)
    point = (0.5 * (da.mean() + db.mean()), max(da.max(), db.max()),
             max(np.percentile(da, 95), np.percentile(db, 95)))
    surf = (None, None, None)
    if getattr(a, "faces", None) is not None and getattr(b, "faces", None) is not None:
        sa, sb = _both(a, b, True, check)
        surf = (0.5 * (sa.mean() + sb.mean()), max(sa.max(), sb.max()),
                max(np.percentile(sa, 95), np.percentile(sb, 95)))
    return DistanceSummary(*(None if v is None else float(v) for v in point + surf))


def closest_points_on_surface(points: np.ndarray, mesh_points: np.ndarray, faces: np.ndarray, *,
                              chunk: int = 32768, check=lambda: None) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of a triangle mesh to each query point: ((N, 3) points, (N,) distances), mm.

    c_i = argmin over points c of the triangles of |p_i - c|, exact (up to rounding), found by
    libigl's axis-aligned bounding-box tree (``igl.AABB``: a branch-and-bound descent with the
    box distance as the lower bound; Jacobson et al., libigl, 2018), built once per call in
    O(F log F) and queried in C++ at ~4-7 us per point on this project's CPU. Memory O(N + F).

    Parameters
    ----------
    points : (N, 3) float array (mm)
    mesh_points : (M, 3) float array, faces : (F, 3) int array: the reference mesh; vertices no
        triangle uses are not part of the surface
    chunk : int, query points per call (between them ``check`` runs)
    check : callable, called between blocks (progress; it may raise to cancel)
    """
    import igl

    pts = np.ascontiguousarray(points, dtype=np.float64)
    mp = np.ascontiguousarray(mesh_points, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"closest points on a surface need (F, 3) triangles, got faces of shape {f.shape}")
    if pts.ndim != 2 or pts.shape[1] != 3 or mp.ndim != 2 or mp.shape[1] != 3:
        raise ValueError(f"closest points need (N, 3) points, got {pts.shape} and mesh points {mp.shape}")
    tree = igl.AABB()
    tree.init(mp, f)
    closest = np.empty_like(pts)
    dist = np.empty(len(pts))
    for s in range(0, len(pts), chunk):
        check()
        d2, _, cp = tree.squared_distance(mp, f, pts[s:s + chunk])
        closest[s:s + len(cp)] = cp
        dist[s:s + len(cp)] = np.sqrt(d2)
    return closest, dist
