r"""Distances between two shapes: Chamfer, Hausdorff and HD95, point-to-point or point-to-surface.

For point sets A, B and the directed distances d_A(i) = min_{b in B} |a_i - b| (a KD-tree,
``scipy.spatial.cKDTree``) or, point-to-surface, d_A(i) = distance from a_i to the nearest point
of B's triangles (``trimesh.proximity.closest_point``, which needs ``rtree``):

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

__all__ = ["directed_distances", "chamfer", "hausdorff", "hd95", "DistanceSummary", "distance_summary"]


def _points_faces(shape) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(shape, "points"):
        return np.asarray(shape.points, dtype=np.float64), shape.faces
    return np.asarray(shape, dtype=np.float64), None


def directed_distances(points: np.ndarray, other, *, surface: bool = False) -> np.ndarray:
    """(N,) distance from each point to ``other`` (mm).

    Parameters
    ----------
    points : (N, 3) float array
    other : Shape or (M, 3) float array
        The reference: its vertices, or with ``surface=True`` its triangles (a mesh Shape).
    surface : bool, default: False
        Distance to the nearest point of ``other``'s surface instead of its nearest vertex.
    """
    pts = np.asarray(points, dtype=np.float64)
    opts, ofaces = _points_faces(other)
    if surface:
        if ofaces is None or len(ofaces) == 0:
            raise ValueError("point-to-surface distances need a triangle mesh as the reference")
        import trimesh

        mesh = trimesh.Trimesh(opts, ofaces, process=False)
        try:
            _, dist, _ = trimesh.proximity.closest_point(mesh, pts)
        except ImportError as exc:  # trimesh's triangle tree needs rtree
            raise ImportError("point-to-surface distances need rtree: pip install rtree") from exc
        return np.asarray(dist, dtype=np.float64)
    from scipy.spatial import cKDTree

    return cKDTree(opts).query(pts)[0]


def _both(a, b, surface: bool) -> tuple[np.ndarray, np.ndarray]:
    pa, _ = _points_faces(a)
    pb, _ = _points_faces(b)
    return directed_distances(pa, b, surface=surface), directed_distances(pb, a, surface=surface)


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


def distance_summary(a, b) -> DistanceSummary:
    """Every distance of this module at once, sharing the nearest-neighbour queries."""
    da, db = _both(a, b, False)
    point = (0.5 * (da.mean() + db.mean()), max(da.max(), db.max()),
             max(np.percentile(da, 95), np.percentile(db, 95)))
    surf = (None, None, None)
    if getattr(a, "faces", None) is not None and getattr(b, "faces", None) is not None:
        sa, sb = _both(a, b, True)
        surf = (0.5 * (sa.mean() + sb.mean()), max(sa.max(), sb.max()),
                max(np.percentile(sa, 95), np.percentile(sb, 95)))
    return DistanceSummary(*(None if v is None else float(v) for v in point + surf))
