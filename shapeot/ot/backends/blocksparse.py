r"""Block-sparse log-sum-exp: reduce only over the cluster pairs that can matter.

x is sorted into clusters I and y into clusters J (:mod:`shapeot.ot.clusters`). At every call,
with the weighted potential h on y and the temperature eps, cluster-level bounds decide which
pairs (I, J) to visit, using the clusters' centroids and radii r:

    C_lo(I, J) = max(0, |X_I - Y_J| - r_I - r_J)^2 / 2 <= C(x_i, y_j) <= C_hi(I, J) = (|X_I - Y_J| + r_I + r_J)^2 / 2
    U(I, J) = log sum_{j in J} e^{h_j} - C_lo(I, J) / eps     (upper bound of J's share of lse_i, log)
    L(I)    = max_J log sum_{j in J} e^{h_j} - C_hi(I, J) / eps  (lower bound of lse_i)

and keeps J for I when U(I, J) >= L(I) - truncate. The mass left out of each row, relative to
the row's total, is then at most sum_{J dropped} exp(U(I, J) - L(I)): the *safety check*
computes that bound at every call and, if it exceeds ``tol``, widens the mask (truncate += 5)
until it does not. So the truncation error is bounded, not hoped for (Schmitzer, SIAM J. Sci.
Comput. 2019, sec. 4, for truncated kernels; Feydy 2020, thesis, sec. 3.3.4).

Three engines do the reduction over the kept pairs: a fused numba kernel on the CPU
(:mod:`.fused`); KeOps in its block-sparse ("ranges") mode, chosen with ``backend="keops"``;
and, elsewhere (CUDA without KeOps) or without numba, batched matmuls over padded tiles of
``TILE`` points, merged with a scatter log-sum-exp. h and the outputs are in the points'
original order: the kernel permutes internally.
"""
from __future__ import annotations

import numpy as np
import torch

from . import fused

TILE = 32
CHUNK_PAIRS = 4096


def _tiles(offsets: torch.Tensor, n_pad: int):
    """Tiles of <= TILE consecutive sorted points per cluster: (index (T, TILE) padded with
    n_pad, first tile of each cluster (K + 1,))."""
    counts = offsets[1:] - offsets[:-1]
    per = (counts + TILE - 1) // TILE
    first = torch.zeros(len(counts) + 1, dtype=torch.long, device=offsets.device)
    first[1:] = torch.cumsum(per, 0)
    tile_cluster = torch.repeat_interleave(torch.arange(len(counts), device=offsets.device), per)
    rank = torch.arange(len(tile_cluster), device=offsets.device) - first[tile_cluster]
    start = offsets[tile_cluster] + rank * TILE
    idx = start[:, None] + torch.arange(TILE, device=offsets.device)[None, :]
    idx = torch.where(idx < offsets[tile_cluster + 1][:, None], idx, torch.full_like(idx, n_pad))
    return idx, first


class BlockSparseKernel:
    """lse / lse_mean over the cluster pairs kept by the bounds above."""

    mode = "multiscale"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, cx, cy, *, truncate: float = 5.0, tol: float = 1e-5,
                 engine: str = "auto"):
        self.x, self.y, self.cx, self.cy = x, y, cx, cy
        self.truncate, self.tol = truncate, tol
        if engine == "auto":
            engine = "numba" if x.device.type == "cpu" and fused.available() else "torch"
        if engine not in ("numba", "torch", "keops"):
            raise ValueError(f"engine must be 'auto', 'numba', 'torch' or 'keops'; got {engine!r}")
        self.engine = engine
        self.stats = {"calls": 0, "widened": 0, "kept_fraction": 0.0, "max_dropped_bound": 0.0}
        self._xs, self._ys = x[cx.perm].contiguous(), y[cy.perm].contiguous()
        d = torch.cdist(cx.centroids, cy.centroids)  # (Kx, Ky)
        rr = cx.radii[:, None] + cy.radii[None, :]
        self._c_lo = (d - rr).clamp(min=0) ** 2 / 2
        self._c_hi = (d + rr) ** 2 / 2
        self._nx = (cx.offsets[1:] - cx.offsets[:-1]).to(x.dtype)
        self._ny = (cy.offsets[1:] - cy.offsets[:-1]).to(x.dtype)
        self._c_np = None
        if engine == "keops":
            from .keops import KeOpsKernel

            self._keops = KeOpsKernel(self._xs, self._ys)
            self._ranges = tuple(torch.stack([c.offsets[:-1], c.offsets[1:]], 1).int().contiguous() for c in (cx, cy))
        elif engine == "numba":
            self._np = (self._xs.numpy(), self._ys.numpy(), cx.offsets.numpy(), cy.offsets.numpy())
        else:
            n, m, dim = len(x), len(y), x.shape[1]
            self._xt_idx, self._x_first = _tiles(cx.offsets, n)
            self._yt_idx, self._y_first = _tiles(cy.offsets, m)
            self._xt = torch.cat([self._xs, x.new_zeros(1, dim)])[self._xt_idx]  # (Tx, TILE, D)
            self._yt = torch.cat([self._ys, y.new_zeros(1, dim)])[self._yt_idx]  # (Ty, TILE, D)
            self._x2 = (self._xt**2).sum(-1) / 2
            self._y2 = (self._yt**2).sum(-1) / 2
            self._y_pad = self._yt_idx == m

    def _cluster_lse(self, hs: torch.Tensor) -> torch.Tensor:
        """(Ky,) log sum_{j in J} e^{h_j} for the sorted potential hs (M,)."""
        cy = self.cy
        h_j = torch.full((cy.k,), -float("inf"), dtype=hs.dtype, device=hs.device)
        h_max = h_j.scatter_reduce(0, cy.labels, hs, "amax")
        safe = torch.where(torch.isfinite(h_max), h_max, torch.zeros_like(h_max))
        h_sum = torch.zeros_like(h_j).index_add_(0, cy.labels, (hs - safe[cy.labels]).exp())
        return safe + h_sum.log()

    def _mask(self, eps: float, hs: torch.Tensor) -> torch.Tensor:
        """Kept cluster pairs (Kx, Ky) for the sorted potential hs (M,), with the safety check."""
        h_lse = self._cluster_lse(hs)
        upper = h_lse[None, :] - self._c_lo / eps  # (Kx, Ky)
        lower = (h_lse[None, :] - self._c_hi / eps).amax(dim=1)  # (Kx,)
        gap = upper - lower[:, None]

        def attempt(trunc):
            keep = gap >= -trunc
            dropped = torch.where(keep, torch.full_like(gap, -float("inf")), gap)
            return keep, float(torch.logsumexp(dropped, dim=1).exp().max()), bool(keep.all())

        keep = self._widened(attempt)
        pairs = (self._nx[:, None] * self._ny[None, :] * keep).sum()
        self.stats["kept_fraction"] = float(pairs) / (len(self.x) * len(self.y))
        return keep

    def _mask_numba(self, eps: float, h_lse: torch.Tensor):
        """The same mask and safety check as :meth:`_mask`, in one fused numba pass per try;
        returns the CSR structure of the kept pairs (indptr (Kx + 1,), indices) as numpy."""
        if self._c_np is None:
            self._c_np = (self._c_lo.double().numpy(), self._c_hi.double().numpy(), self._ny.double().numpy())
        h = h_lse.double().numpy()

        def attempt(trunc):
            keep, dropped, count, kept_y = fused.gap_mask(h, *self._c_np, eps, trunc)
            return (keep, count, kept_y), float(dropped.max()), bool(keep.all())

        keep, count, kept_y = self._widened(attempt)
        self.stats["kept_fraction"] = float(self._nx.double().numpy() @ kept_y) / (len(self.x) * len(self.y))
        indptr = np.zeros(len(count) + 1, dtype=np.int64)
        np.cumsum(count, out=indptr[1:])
        return indptr, np.nonzero(keep)[1]

    def _widened(self, attempt):
        """The safety check: ``attempt(truncate) -> (mask, bound on the skipped mass of a row,
        everything kept)``, retried with truncate += 5 until the bound is below ``tol``."""
        trunc = self.truncate
        while True:
            mask, bound, everything = attempt(trunc)
            if bound <= self.tol or everything:
                break
            trunc += 5.0
            self.stats["widened"] += 1
        # The widening a row needed at one eps is needed at the next ones too (the bounds' slack
        # grows as eps falls): keep it, rather than re-testing the tight masks at every call.
        self.truncate = trunc
        self.stats["calls"] += 1
        self.stats["max_dropped_bound"] = max(self.stats["max_dropped_bound"], bound)
        return mask

    def _reduce(self, eps: float, h: torch.Tensor, v: torch.Tensor | None):
        hs = h[self.cy.perm]
        if self.engine == "numba":
            return self._reduce_numba(eps, hs, self._mask_numba(eps, self._cluster_lse(hs)), v)
        keep = self._mask(eps, hs)
        if self.engine == "keops":
            return self._reduce_keops(eps, hs, keep, v)
        return self._reduce_torch(eps, hs, keep, v)

    def _reduce_numba(self, eps, hs, csr, v):
        indptr, indices = csr
        xs, ys, xoff, yoff = self._np
        vs = None if v is None else v[self.cy.perm].contiguous().numpy()
        lse_s, mean_s = fused.lse_csr(xs, ys, hs.contiguous().numpy(), eps, xoff, yoff, indptr, indices, vs)
        out = torch.empty(len(self.x), dtype=self.x.dtype)
        out[self.cx.perm] = torch.from_numpy(lse_s)
        mean = None
        if v is not None:
            mean = torch.empty(len(self.x), v.shape[1], dtype=self.x.dtype)
            mean[self.cx.perm] = torch.from_numpy(mean_s)
        return out, mean

    def _reduce_keops(self, eps, hs, keep, v):
        # KeOps's block-sparse mode: the same compiled formula as the online backend, scheduled
        # over the kept cluster pairs only (pykeops.torch.cluster.from_matrix builds the ranges).
        from pykeops.torch.cluster import from_matrix

        formula = self._keops._formula(eps, hs)
        formula.ranges = from_matrix(*self._ranges, keep)
        lse_s = formula.logsumexp(dim=1)[:, 0]
        out = torch.empty(len(self.x), dtype=self.x.dtype, device=self.x.device)
        out[self.cx.perm] = lse_s
        mean = None
        if v is not None:
            vj = self._keops._LazyTensor(v[self.cy.perm].contiguous()[None, :, :])
            mean = torch.empty(len(self.x), v.shape[1], dtype=self.x.dtype, device=self.x.device)
            mean[self.cx.perm] = formula.sumsoftmaxweight(vj, dim=1)
        return out, mean

    def _reduce_torch(self, eps, hs, keep, v):
        n, m, dt, dev = len(self.x), len(self.y), self.x.dtype, self.x.device
        ii, jj = keep.nonzero(as_tuple=True)
        xf, yf = self._x_first, self._y_first
        nxt, nyt = xf[ii + 1] - xf[ii], yf[jj + 1] - yf[jj]
        reps = nxt * nyt
        pair = torch.repeat_interleave(torch.arange(len(ii), device=dev), reps)
        rank = torch.arange(len(pair), device=dev) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
        tx_all = xf[ii[pair]] + rank // nyt[pair]
        ty_all = yf[jj[pair]] + rank % nyt[pair]
        hy = torch.cat([hs, hs.new_full((1,), -float("inf"))])[self._yt_idx] - self._y2 / eps  # (Ty, TILE)
        hy = torch.where(self._y_pad, torch.full_like(hy, -float("inf")), hy)
        vt = None
        if v is not None:
            vt = torch.cat([v[self.cy.perm], v.new_zeros(1, v.shape[1])])[self._yt_idx]  # (Ty, TILE, E)
        n_tiles = len(self._xt)
        run_m = torch.full((n_tiles, TILE), -float("inf"), dtype=dt, device=dev)
        parts = []
        for p0 in range(0, len(tx_all), CHUNK_PAIRS):
            tx, ty = tx_all[p0:p0 + CHUNK_PAIRS], ty_all[p0:p0 + CHUNK_PAIRS]
            s = torch.baddbmm(hy[ty][:, None, :], self._xt[tx], self._yt[ty].transpose(1, 2), alpha=1.0 / eps)
            bm = s.amax(dim=2)  # (P, TILE)
            bm = torch.where(torch.isfinite(bm), bm, torch.full_like(bm, -1e30))
            s.sub_(bm[:, :, None]).exp_()
            parts.append((tx, bm, s.sum(dim=2), None if v is None else torch.bmm(s, vt[ty])))
            run_m.index_reduce_(0, tx, bm, "amax")
        run_s = torch.zeros((n_tiles, TILE), dtype=dt, device=dev)
        run_v = None if v is None else torch.zeros((n_tiles, TILE, v.shape[1]), dtype=dt, device=dev)
        for tx, bm, bs, bv in parts:
            r = (bm - run_m[tx]).exp()
            run_s.index_add_(0, tx, bs * r)
            if v is not None:
                run_v.index_add_(0, tx, bv * r[:, :, None])
        lse_t = run_m + run_s.log() - self._x2 / eps
        valid = self._xt_idx < n
        pos = self.cx.perm[self._xt_idx[valid]]
        out = torch.empty(n, dtype=dt, device=dev)
        out[pos] = lse_t[valid]
        mean = None
        if v is not None:
            mean = torch.empty(n, v.shape[1], dtype=dt, device=dev)
            mean[pos] = (run_v / run_s[:, :, None])[valid]
        return out, mean

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        return self._reduce(eps, h, None)[0]

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._reduce(eps, h, v)
