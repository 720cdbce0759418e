r"""Coarse-to-fine Sinkhorn with kernel truncation.

1. Cluster x and y on one voxel grid (:mod:`.clusters`), with about 16 points per cell.
2. Run the epsilon-scaling on the cluster centroids (weights summed) while the blur is larger
   than the cell size: at those scales the clusters are as good as the points. With more than
   ``MAX_CELLS`` centroids a side (about 10^5 points and more) that coarse solve is itself
   multiscale, on cells of the centroids: three scales at 2e5-1e6 points, so no dense problem
   is ever larger than ``MAX_CELLS`` a side (figures with and without: README, Performance).
3. Jump to the points: extrapolate the potentials from the centroids,
   f_i = lam softmin(eps, x_i, Y_J, log B_J + g_J / eps), and likewise g and the self-terms.
4. Finish the schedule on the points with block-sparse reductions
   (:class:`.backends.blocksparse.BlockSparseKernel`): at every reduction, cluster-level bounds
   skip the cluster pairs whose share of the sum is negligible, and a safety check bounds the
   skipped mass and widens the mask when that bound exceeds its tolerance. Above a few thousand
   cells the mask is built as a tree: pairs of parent cells first, then the children of the kept
   parent pairs, with bounds computed on the fly (no (Kx, Ky) array).
The final extrapolation (gradients) and the lazy plan use the same block-sparse kernels.

References: Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport
problems", SIAM J. Sci. Comput. 41(3), 2019; Mérigot, "A multiscale approach to optimal
transport", Comput. Graph. Forum 30(5), 2011; Feydy, "Geometric data analysis, beyond
convolutions", PhD thesis, 2020, sec. 3.3.4.
"""
from __future__ import annotations

import torch

from .backends import fused
from .backends.base import KernelSet
from .backends.blocksparse import BlockSparseKernel
from .backends.pytorch import TorchBackend
from .clusters import choose_cell_size, cluster
from .schedule import diameter

# ~16 points per cell: smaller cells give tighter truncation bounds (fewer pairs), larger ones a
# cheaper mask; 16 was fastest at 10k-50k points on the benchmark clouds.
POINTS_PER_CELL = 16
# Most centroids a side of a dense coarse solve; above it the coarse solve is multiscale too.
MAX_CELLS = 4000
# The fine scale starts at the first blur below JUMP_RATIO x the cell size.
JUMP_RATIO = 1.0
# Largest bound on the mass a reduction may skip, relative to its row; above it the mask widens.
MASS_TOL = 1e-5


def multiscale_loop(x, y, a, b, sigmas, rho, debias, *, loop, truncate=5.0, engine="auto"):
    """Run the blur schedule ``sigmas`` coarse-to-fine.

    x (N, D), y (M, D): detached, centred points; a (N,), b (M,): weights; ``loop`` is the
    solver's Sinkhorn loop, ``loop(kernels, a_log, b_log, eps_list, init=None)``.
    Returns (potentials, iterations, fine kernels, info).

    With more than ``MAX_CELLS`` cells on a side (about 10^5 points and more), the coarse scales
    are themselves solved by this function on the cells' centroids: a third (and fourth...) scale,
    so the densest problem ever solved has at most ``MAX_CELLS`` points a side, and every
    reduction finer than that is block-sparse.
    """
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    diam = diameter(x, y)
    target = max(8, (len(x) + len(y)) / POINTS_PER_CELL)
    if not fused.available():
        target = min(target, MAX_CELLS)  # without numba the masks are dense (Kx, Ky) arrays
    cell = choose_cell_size(torch.cat([x, y]), lo, diam, int(target))
    cx, cy = cluster(x, a, lo, cell), cluster(y, b, lo, cell)
    jump = max(1, next((k for k, s in enumerate(sigmas) if s < JUMP_RATIO * cell), len(sigmas)))

    def lam(e):
        return 1.0 if rho is None else rho / (rho + e)

    def sparse(p, q, cp, cq):
        return BlockSparseKernel(p, q, cp, cq, truncate=truncate, tol=MASS_TOL, engine=engine)

    # Coarse scales, on the centroids: dense when small, else one more level of this loop.
    a_c, b_c = cx.weights, cy.weights
    coarse_eps = [s * s for s in sigmas[:jump]]
    if max(cx.k, cy.k) <= MAX_CELLS:
        coarse = TorchBackend().kernels(cx.centroids, cy.centroids, self_terms=debias, mode="dense")
        (f_c, g_c, fa_c, gb_c), n_coarse = loop(coarse, a_c.log(), b_c.log(), coarse_eps)
        levels = [(cx.k, cy.k)]
    else:
        (f_c, g_c, fa_c, gb_c), n_coarse, _, sub = multiscale_loop(
            cx.centroids, cy.centroids, a_c, b_c, sigmas[:jump], rho, debias, loop=loop, truncate=truncate,
            engine=engine)
        levels = sub["levels"] + [(cx.k, cy.k)]
    eps = sigmas[jump - 1] ** 2

    # The jump: extrapolate the coarse potentials to the points, f_i = lam softmin over the
    # centroids, block-sparse too: the centroids are clustered in their turn (~16 a cluster).
    def grouped(c):
        size = choose_cell_size(c.centroids, lo, diam, max(1, c.k // POINTS_PER_CELL))
        return cluster(c.centroids, c.weights, lo, size)

    ccx, ccy = grouped(cx), grouped(cy)

    def extrapolate(points, cp, centroids, cc, w_c, pot_c):
        return -lam(eps) * eps * sparse(points, centroids, cp, cc).lse(eps, w_c.log() + pot_c / eps)

    f = extrapolate(x, cx, cy.centroids, ccy, b_c, g_c)
    g = extrapolate(y, cy, cx.centroids, ccx, a_c, f_c)
    fa = extrapolate(x, cx, cx.centroids, ccx, a_c, fa_c) if debias else None
    gb = extrapolate(y, cy, cy.centroids, ccy, b_c, gb_c) if debias else None

    ks = KernelSet(sparse(x, y, cx, cy), sparse(y, x, cy, cx),
                   sparse(x, x, cx, cx) if debias else None, sparse(y, y, cy, cy) if debias else None,
                   "multiscale")
    fine_eps = [s * s for s in sigmas[jump:]]
    if fine_eps:
        pots, n_fine = loop(ks, a.log(), b.log(), fine_eps, init=(f, g, fa, gb))
    else:
        pots, n_fine = (f, g, fa, gb), 0
    info = {"cells": (cx.k, cy.k), "cell_size": cell, "levels": levels, "engine": ks.xy.engine,
            "coarse_iterations": n_coarse, "fine_iterations": n_fine}
    return pots, n_coarse + n_fine, ks, info


def kernel_stats(ks: KernelSet) -> dict:
    """Truncation statistics of the last reductions: kept fraction of x->y pairs, widenings,
    and the largest bound on the relative mass left out of a row."""
    kernels = [k for k in (ks.xy, ks.yx, ks.xx, ks.yy) if k is not None]
    return {"kept_fraction": ks.xy.stats["kept_fraction"],
            "widened": sum(k.stats["widened"] for k in kernels),
            "dropped_mass_bound": max(k.stats["max_dropped_bound"] for k in kernels)}
