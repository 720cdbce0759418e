"""Weighted subsampling of a measure on points, for the coarse steps of the pipeline.

Points are grouped into grid cells (:func:`shapeot.shapes.decimate.cluster_points`); each cell
becomes one point at the weighted centroid of its members, carrying their total weight. The
subsampled measure has the same mass and the same centroid, and its Wasserstein distance to the
original is below the cell size, so coarse OT correspondences stay faithful.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Clusters", "clusters"]


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
    from shapeot.shapes.decimate import cluster_points

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
