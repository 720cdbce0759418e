r"""Coarse-to-fine Sinkhorn with kernel truncation.

1. Cluster x and y on one voxel grid (:mod:`.clusters`), with about 16 points per cell.
2. Run the epsilon-scaling on the cluster centroids (weights summed) while the blur is larger
   than the cell size: at those scales the clusters are as good as the points.
3. Jump to the points: extrapolate the potentials from the centroids,
   f_i = lam softmin(eps, x_i, Y_J, log B_J + g_J / eps), and likewise g and the self-terms.
4. Finish the schedule on the points with block-sparse reductions
   (:class:`.backends.blocksparse.BlockSparseKernel`): at every reduction, cluster-level bounds
   skip the cluster pairs whose share of the sum is negligible, and a safety check bounds the
   skipped mass and widens the mask when that bound exceeds its tolerance.
The final extrapolation (gradients) and the lazy plan use the same block-sparse kernels.

References: Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport
problems", SIAM J. Sci. Comput. 41(3), 2019; Mérigot, "A multiscale approach to optimal
transport", Comput. Graph. Forum 30(5), 2011; Feydy, "Geometric data analysis, beyond
convolutions", PhD thesis, 2020, sec. 3.3.4.
"""
from __future__ import annotations

import torch

from .backends.base import KernelSet
from .backends.blocksparse import BlockSparseKernel
from .backends.pytorch import OnlineKernel, TorchBackend
from .clusters import choose_cell_size, cluster
from .schedule import diameter

# ~16 points per cell: smaller cells give tighter truncation bounds (fewer pairs), larger ones a
# cheaper (K_x, K_y) mask; 16 was fastest at 10k-50k points on the benchmark clouds.
POINTS_PER_CELL = 16
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
    """
    lo = torch.minimum(x.min(0).values, y.min(0).values)
    diam = diameter(x, y)
    target = int(min(MAX_CELLS, max(8, (len(x) + len(y)) / POINTS_PER_CELL)))
    cell = choose_cell_size(torch.cat([x, y]), lo, diam, target)
    cx, cy = cluster(x, a, lo, cell), cluster(y, b, lo, cell)
    jump = max(1, next((k for k, s in enumerate(sigmas) if s < JUMP_RATIO * cell), len(sigmas)))

    def lam(e):
        return 1.0 if rho is None else rho / (rho + e)

    # Coarse scales, on the centroids.
    a_c, b_c = cx.weights, cy.weights
    coarse = TorchBackend().kernels(cx.centroids, cy.centroids, self_terms=debias, mode="dense")
    (f_c, g_c, fa_c, gb_c), n_coarse = loop(coarse, a_c.log(), b_c.log(), [s * s for s in sigmas[:jump]])
    eps = sigmas[jump - 1] ** 2

    # The jump: extrapolate the coarse potentials to the points.
    def extrapolate(points, centroids, w_c, pot_c):
        return -lam(eps) * eps * OnlineKernel(points, centroids).lse(eps, w_c.log() + pot_c / eps)

    f = extrapolate(x, cy.centroids, b_c, g_c)
    g = extrapolate(y, cx.centroids, a_c, f_c)
    fa = extrapolate(x, cx.centroids, a_c, fa_c) if debias else None
    gb = extrapolate(y, cy.centroids, b_c, gb_c) if debias else None

    def sparse(p, q, cp, cq):
        return BlockSparseKernel(p, q, cp, cq, truncate=truncate, tol=MASS_TOL, engine=engine)

    ks = KernelSet(sparse(x, y, cx, cy), sparse(y, x, cy, cx),
                   sparse(x, x, cx, cx) if debias else None, sparse(y, y, cy, cy) if debias else None,
                   "multiscale")
    fine_eps = [s * s for s in sigmas[jump:]]
    if fine_eps:
        pots, n_fine = loop(ks, a.log(), b.log(), fine_eps, init=(f, g, fa, gb))
    else:
        pots, n_fine = (f, g, fa, gb), 0
    info = {"cells": (cx.k, cy.k), "cell_size": cell, "engine": ks.xy.engine, "coarse_iterations": n_coarse,
            "fine_iterations": n_fine}
    return pots, n_coarse + n_fine, ks, info


def kernel_stats(ks: KernelSet) -> dict:
    """Truncation statistics of the last reductions: kept fraction of x->y pairs, widenings,
    and the largest bound on the relative mass left out of a row."""
    kernels = [k for k in (ks.xy, ks.yx, ks.xx, ks.yy) if k is not None]
    return {"kept_fraction": ks.xy.stats["kept_fraction"],
            "widened": sum(k.stats["widened"] for k in kernels),
            "dropped_mass_bound": max(k.stats["max_dropped_bound"] for k in kernels)}
