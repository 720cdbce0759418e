"""Voxel-grid clustering of point clouds for the multiscale solver (any dimension D).

Points are binned on a regular grid of cell size ``cell``; each non-empty cell is a cluster. The
points are sorted by cluster, so that each cluster is a contiguous range, and each cluster gets
its centroid (weighted), its total weight and its radius (the largest distance from the centroid
to one of its points): the radius makes the truncation test of :mod:`.multiscale` a bound, not
a heuristic. Clusters are numbered in Z-order (Morton codes of the integer cell coordinates)
when the codes fit in 62 bits, so that consecutive clusters are neighbours in every direction
(tiles of consecutive points stay compact on the GPU); otherwise by row-major cell index, or
by ``torch.unique(dim=0)`` on the coordinates, which works for any D.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Clusters:
    """A cloud sorted by cluster.

    perm : (N,) long, sorted position -> original index
    offsets : (K + 1,) long, cluster k holds sorted points offsets[k]:offsets[k+1]
    labels : (N,) long, cluster of each sorted point
    centroids : (K, D), weights : (K,) (summed), radii : (K,)
    """

    perm: torch.Tensor
    offsets: torch.Tensor
    labels: torch.Tensor
    centroids: torch.Tensor
    weights: torch.Tensor
    radii: torch.Tensor

    @property
    def k(self) -> int:
        return len(self.weights)


def _morton(ijk: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,) Z-order (Morton) keys of non-negative integer cells (N, D): the bits of the D
    coordinates interleaved, so that consecutive keys are cells close in every direction."""
    d = ijk.shape[1]
    key = torch.zeros(len(ijk), dtype=torch.int64, device=ijk.device)
    for b in range(bits):
        for k in range(d):
            key |= ((ijk[:, k] >> b) & 1) << (b * d + k)
    return key


def _cells(x: torch.Tensor, origin: torch.Tensor, cell: float,
           zorder: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    ijk = torch.floor((x - origin) / cell).to(torch.int64)  # (N, D), >= 0
    extent = ijk.max(dim=0).values + 1
    bits = max(1, int(extent.max()).bit_length())
    if zorder and bits * x.shape[1] <= 62:
        # Clusters in Z-order: a run of consecutive clusters is compact in every direction, so
        # the GPU kernels' tiles of consecutive points meet few, nearby clusters.
        _, labels, counts = torch.unique(_morton(ijk, bits), return_inverse=True, return_counts=True)
    elif float(torch.prod(extent.double())) < 2.0**62:
        # One int64 key per cell (row-major): a 1D unique, much faster than unique(dim=0).
        strides = torch.cumprod(torch.cat([extent.new_ones(1), extent[:-1]]), 0)
        _, labels, counts = torch.unique(ijk @ strides, return_inverse=True, return_counts=True)
    else:  # very fine grids in high dimension: de-duplicate the coordinate rows themselves
        _, labels, counts = torch.unique(ijk, dim=0, return_inverse=True, return_counts=True)
    return labels, counts


def choose_cell_size(x: torch.Tensor, origin: torch.Tensor, diam: float, target: int) -> float:
    """Cell size whose grid has about ``target`` non-empty cells on x (bisection in log scale)."""
    lo, hi = math.log(diam * 1e-4), math.log(diam)
    for _ in range(10):
        mid = 0.5 * (lo + hi)
        k = len(_cells(x, origin, math.exp(mid), zorder=False)[1])  # counting needs no order
        if k > target:
            lo = mid
        else:
            hi = mid
    return math.exp(hi)


def cluster(x: torch.Tensor, w: torch.Tensor, origin: torch.Tensor, cell: float) -> Clusters:
    """Bin x (N, D) with weights w (N,) on the grid (origin, cell) and sort it by cluster."""
    labels, counts = _cells(x, origin, cell)
    labels_sorted, perm = torch.sort(labels, stable=True)
    k = len(counts)
    offsets = torch.zeros(k + 1, dtype=torch.long, device=x.device)
    offsets[1:] = torch.cumsum(counts, 0)
    xs, ws = x[perm], w[perm]
    mass = torch.zeros(k, dtype=x.dtype, device=x.device).index_add_(0, labels_sorted, ws)
    safe = torch.where(mass > 0, mass, torch.ones_like(mass))
    # Centroids weighted by mass, falling back to the plain mean for clusters of zero mass.
    wsum = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, labels_sorted, xs * ws[:, None])
    plain = torch.zeros_like(wsum).index_add_(0, labels_sorted, xs) / counts[:, None].to(x.dtype)
    centroids = torch.where((mass > 0)[:, None], wsum / safe[:, None], plain)
    dist = (xs - centroids[labels_sorted]).norm(dim=1)
    radii = torch.zeros(k, dtype=x.dtype, device=x.device).scatter_reduce_(0, labels_sorted, dist, "amax")
    return Clusters(perm, offsets, labels_sorted, centroids, mass, radii)


def coarsen(c: Clusters, origin: torch.Tensor, target: int) -> Clusters:
    """Group the clusters of c into about ``target`` parent clusters (the next level of a tree).

    The parents are clusters of c's centroids on a coarser grid, so the returned ``perm`` lists
    c's clusters sorted by parent and ``offsets`` delimits each parent's children. Radii cover
    the children's points, not just their centroids (|child centroid - parent centroid| + child
    radius), so the truncation bounds stay bounds at the parent level.
    """
    lo = c.centroids.min(dim=0).values
    diam = float((c.centroids.max(dim=0).values - lo).norm())
    cell = choose_cell_size(c.centroids, origin, max(diam, 1e-12), target)
    p = cluster(c.centroids, c.weights, origin, cell)
    reach = (c.centroids[p.perm] - p.centroids[p.labels]).norm(dim=1) + c.radii[p.perm]
    radii = torch.zeros_like(p.radii).scatter_reduce_(0, p.labels, reach, "amax")
    return Clusters(p.perm, p.offsets, p.labels, p.centroids, p.weights, radii)
