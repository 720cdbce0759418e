r"""Quality of a warp of a triangle mesh: area ratios (the surface Jacobian), folds, 3D Jacobians.

* Area ratio of triangle t: J_t = area(phi(t)) / area(t), the Jacobian determinant of the
  deformation restricted to the surface, sampled on the source triangles. J_t < 1 shrinks.
* Folded (flipped) triangle: its warped normal n'_t points against the area-weighted mean
  normal m'_t of the triangles sharing a vertex with it (cos(n'_t, m'_t) < 0), while it agreed
  clearly with it in the source mesh (cos(n_t, m_t) >= 0.2). Triangles already at a crease
  sharper than ~78 degrees in the source (deep, crumpled sulci of a decimated pial surface) are
  not scored: a smooth map can tip them over the 90-degree line without folding anything. A
  diffeomorphism of space maps a surface without turning any triangle over. Slivers (shape
  quality 4 sqrt(3) area / sum of squared edges < 0.1, where 1 is equilateral) are not scored
  either: their normal is ill-conditioned, and a displacement far smaller than the mesh's edges
  can turn them over. Given the deformation, a candidate counts only if the map turns it over
  there: det D phi <= 0 at its centroid, or its warped normal opposes the normal the map
  carries its source normal to, cof(D phi) n_t (the triangle inverted by its linear
  interpolation). An orientation-preserving map can sharpen a crease of 76 degrees past 90
  (a 5k-vertex frog retina: det D phi 0.57 there, warped normal within 2 degrees of
  cof(D phi) n_t) without turning anything over.
* 3D Jacobian determinant det D phi(x), by central finite differences of ``deformation.apply``:
  < 0 where the map of space folds, the volume ratio otherwise.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["area_ratios", "folded_triangles", "jacobians", "jacobian_determinants", "WarpSummary", "warp_summary"]


def _normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) area vectors: half the cross product of two edges (length = triangle area)."""
    p = points[faces]  # (F, 3 corners, 3)
    return 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def area_ratios(points: np.ndarray, warped: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) area(phi(t)) / area(t) per triangle; degenerate source triangles give NaN.

    Parameters
    ----------
    points, warped : (N, 3) float arrays
        Vertex positions before and after the warp (mm).
    faces : (F, 3) int array
    """
    a0 = np.linalg.norm(_normals(np.asarray(points, float), faces), axis=1)
    a1 = np.linalg.norm(_normals(np.asarray(warped, float), faces), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a0 > 0, a1 / a0, np.nan)


def _agreement(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) cosine between each triangle's normal and its vertex neighbourhood's mean normal."""
    n = _normals(points, faces)  # (F, 3)
    vert = np.zeros((len(points), 3))
    for c in range(3):
        np.add.at(vert, faces[:, c], n)
    around = vert[faces].sum(1) - 3 * n  # (F, 3): neighbours' area vectors, itself excluded
    norm = np.linalg.norm(n, axis=1) * np.linalg.norm(around, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, (n * around).sum(1) / norm, 1.0)


def folded_triangles(points: np.ndarray, warped: np.ndarray, faces: np.ndarray, deformation=None,
                     step: float | None = None) -> np.ndarray:
    """(F,) bool: triangles the warp turned over (see the module docstring).

    Parameters
    ----------
    points, warped : (N, 3) float arrays (mm); faces : (F, 3) int array
    deformation : object with ``.apply((N, 3)) -> (N, 3)``, optional
        The map that moved ``points`` to ``warped``: candidates are then checked against its
        Jacobian at their centroids (a few evaluations, candidates only).
    step : float, optional
        Finite-difference step of those Jacobians (mm); default 1e-3 of the mesh's extent.
    """
    faces = np.asarray(faces)
    p, w = np.asarray(points, float), np.asarray(warped, float)
    edges = p[faces] - p[faces][:, [1, 2, 0]]  # (F, 3, 3)
    quality = 4 * np.sqrt(3) * np.linalg.norm(_normals(p, faces), axis=1) / np.maximum((edges**2).sum((1, 2)), 1e-300)
    folded = (_agreement(w, faces) < 0) & (_agreement(p, faces) >= 0.2) & (quality >= 0.1)
    cand = np.flatnonzero(folded)
    if deformation is not None and len(cand):
        h = step if step is not None else 1e-3 * float(np.ptp(p, axis=0).max())
        jac = jacobians(deformation, p[faces[cand]].mean(1), h)  # (C, 3, 3)
        det = np.linalg.det(jac)
        # cof(J) n = det(J) J^-T n: where the map carries the triangle's normal
        inv_t = np.linalg.inv(jac).transpose(0, 2, 1)
        carried = np.einsum("cij,cj->ci", inv_t, _normals(p, faces[cand])) * det[:, None]
        folded[cand] = (det <= 0) | ((carried * _normals(w, faces[cand])).sum(1) <= 0)
    return folded


def jacobians(deformation, points: np.ndarray, step: float) -> np.ndarray:
    """(N, 3, 3) D phi at ``points`` (rows: outputs, columns: inputs) by central differences of
    ``deformation.apply``; arguments as :func:`jacobian_determinants`."""
    p = np.asarray(points, dtype=np.float64)
    cols = []
    for d in range(3):
        e = np.zeros(3)
        e[d] = step
        cols.append((deformation.apply(p + e) - deformation.apply(p - e)) / (2 * step))  # (N, 3)
    return np.stack(cols, axis=2)


def jacobian_determinants(deformation, points: np.ndarray, step: float) -> np.ndarray:
    """(N,) det D phi at ``points`` by central differences of ``deformation.apply``.

    Parameters
    ----------
    deformation : object with ``.apply((N, 3)) -> (N, 3)``
    points : (N, 3) float array (mm)
    step : float
        Finite-difference step h (mm); small against the deformation's smallest length scale.
    """
    return np.linalg.det(jacobians(deformation, points, step))


class WarpSummary(NamedTuple):
    """Area-ratio statistics and fold counts of a warped mesh."""

    area_ratio_min: float
    area_ratio_max: float
    area_ratio_p01: float
    area_ratio_p99: float
    folded: int
    folded_fraction: float


def warp_summary(points: np.ndarray, warped: np.ndarray, faces: np.ndarray, deformation=None,
                 step: float | None = None) -> WarpSummary:
    """Area ratios (min, max, 1st and 99th percentiles) and folded triangles of a warp
    (``deformation`` and ``step``: see :func:`folded_triangles`)."""
    j = area_ratios(points, warped, faces)
    j = j[np.isfinite(j)]
    folds = folded_triangles(points, warped, faces, deformation, step)
    return WarpSummary(float(j.min()), float(j.max()), float(np.percentile(j, 1)), float(np.percentile(j, 99)),
                       int(folds.sum()), float(folds.mean()))
