"""Point pooling: weighted subsampling of a measure on points, for the coarse steps of every pipeline.

Points are grouped into cubic grid cells (:func:`cluster_points`); each cell becomes one point at
the weighted centroid of its members, carrying their total weight (:func:`clusters`). The pooled
measure has the same mass and the same centroid, and its Wasserstein distance to the original is
below the cell size, so coarse OT correspondences stay faithful.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Clusters", "clusters", "cluster_points"]


@dataclass(frozen=True)
class Clusters:
    """A grouping of N weighted points into K clusters.

    Attributes
    ----------
    labels : (N,) int64 array, cluster of each point (all zeros to K-1 used)
    weights : (N,) float64 array, the points' weights
    cluster_weights : (K,) float64 array, total weight of each cluster
    """

    labels: np.ndarray
    weights: np.ndarray
    cluster_weights: np.ndarray

    def reweighted(self, weights: np.ndarray) -> "Clusters":
        """The same grouping with new point weights (N,), normalised to sum 1."""
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
        return Clusters(self.labels, w, np.bincount(self.labels, weights=w, minlength=len(self.cluster_weights)))

    def centroids(self, points: np.ndarray) -> np.ndarray:
        """(K, 3) weighted centroids of the clusters for positions ``points`` (N, 3)."""
        k = len(self.cluster_weights)
        out = np.zeros((k, points.shape[1]))
        np.add.at(out, self.labels, points * self.weights[:, None])
        return out / np.maximum(self.cluster_weights, 1e-300)[:, None]


def clusters(points: np.ndarray, weights: np.ndarray, n: int | None) -> Clusters:
    """Group ``points`` (N, 3) with ``weights`` (N,) into about ``n`` clusters (identity if n >= N
    or n is None). Clusters of zero weight are dropped."""
    w = np.asarray(weights, dtype=np.float64)
    if n is None or n >= len(points):
        labels = np.arange(len(points))
    else:
        labels = cluster_points(np.asarray(points, dtype=np.float64), int(n))
    cw = np.bincount(labels, weights=w)
    keep = cw > 0
    if not keep.all():  # renumber so that every cluster has mass; massless points join cluster 0
        remap = np.cumsum(keep) - 1
        labels = np.where(keep[labels], remap[labels], 0)
        cw = cw[keep]
    return Clusters(np.asarray(labels, dtype=np.int64), w, cw)


def cluster_points(points: np.ndarray, n_points: int) -> np.ndarray:
    """Group points into cubic grid cells so that about ``n_points`` cells are occupied.

    The cell size is found by bisection on its logarithm (the number of occupied cells falls
    as cells grow).

    Parameters
    ----------
    points : (N, 3) float array
        Positions (mm).
    n_points : int
        Wanted number of clusters.

    Returns
    -------
    (N,) int64 array
        Cluster index of each point, in [0, K) with K close to ``n_points``.
    """
    lo_corner = points.min(axis=0)
    extent = float(np.ptp(points, axis=0).max()) or 1.0
    lo, hi = np.log(extent * 1e-6), np.log(extent * 2.0)
    best = None
    for _ in range(40):
        h = np.exp(0.5 * (lo + hi))
        cells = np.floor((points - lo_corner) / h).astype(np.int64)
        _, labels = np.unique(cells, axis=0, return_inverse=True)
        labels = labels.reshape(-1)
        k = int(labels.max()) + 1
        if best is None or abs(k - n_points) < abs(best[0] - n_points):
            best = (k, labels)
        if k == n_points:
            break
        if k > n_points:
            lo = np.log(h)
        else:
            hi = np.log(h)
    return best[1]
