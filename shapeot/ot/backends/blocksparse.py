r"""Block-sparse log-sum-exp: reduce only over the cluster pairs that can matter.

x is sorted into clusters I and y into clusters J (:mod:`shapeot.ot.clusters`). At every call,
with the weighted potential h on y and the temperature eps, cluster-level bounds decide which
pairs (I, J) to visit, using the clusters' centroids and radii r:

    C_lo(I, J) = max(0, |X_I - Y_J| - r_I - r_J)^2 / 2 <= C(x_i, y_j) <= C_hi(I, J) = (|X_I - Y_J| + r_I + r_J)^2 / 2
    U(I, J) = log sum_{j in J} e^{h_j} - C_lo(I, J) / eps     (upper bound of J's share of lse_i, log)
    L(I)    = max_J log sum_{j in J} e^{h_j} - C_hi(I, J) / eps  (lower bound of lse_i)

and keeps J for I when U(I, J) >= L(I) - truncate. The mass left out of each row, relative to
the row's total, is then at most sum_{J dropped} exp(U(I, J) - L(I)): the *safety check*
computes that bound at every call and, if it exceeds ``tol``, widens the mask (raises truncate)
until it does not (in steps of log(bound / tol)). So the truncation error is bounded, not hoped for (Schmitzer,
SIAM J. Sci.
Comput. 2019, sec. 4, for truncated kernels; Feydy 2020, thesis, sec. 3.3.4).

Above ``DENSE_CELL_PAIRS`` cluster pairs (10^5 points and more) the (Kx, Ky) bounds themselves
cost too much; the clusters are then grouped into parents (a two-level tree, as in the
hierarchical bounds of Schmitzer 2019, sec. 4.3, and Mérigot 2011): the same test runs on the
parent pairs, and the clusters are tested only inside the kept parent pairs. The bound of a row
adds the mass of the parent pairs dropped wholesale, so the safety check covers both levels.
The cluster-level mask runs in numba whenever numba is installed (its data are O(clusters)).

Four engines do the reduction over the kept pairs: a fused numba kernel on the CPU
(:mod:`.fused`); a fused Triton kernel on CUDA (:mod:`.triton`, ``backend="triton"``, the
default on CUDA when its self-check passes); KeOps in its block-sparse ("ranges") mode, chosen
with ``backend="keops"``; and, elsewhere (CUDA without Triton or KeOps) or without numba,
batched matmuls over padded tiles of ``TILE`` points, merged with a scatter log-sum-exp. h and
the outputs are in the points' original order: the kernel permutes internally.

What runs where on CUDA: the points, potentials, reductions and outputs stay on the device.
The cluster-level mask is built on the CPU (numba, O(clusters) data: the (Ky,) cluster
log-masses go down, the CSR of kept cluster pairs comes back up), and on CUDA (and with the
Triton engine) it is *reused* across reductions at the same eps while a rigorous test allows
it: if the cluster log-masses moved by at most Delta since the mask was built, the skipped mass
bound grows by at most e^{2 Delta} (U rises and L falls by at most Delta each), so the mask is
kept while bound e^{2 Delta} <= tol and rebuilt otherwise (``stats["mask_builds"]``). The
check is one (Ky,) reduction on the device and one scalar read.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import fused

TILE = 32
CHUNK_PAIRS = 4096
# Above this many cluster pairs the mask is built on a two-level tree (:class:`_Tree`): the
# (Kx, Ky) bounds of parents first, then the children of the kept parent pairs only.
DENSE_CELL_PAIRS = 1_000_000
# Children per parent in that tree, and the most parents (a dense (Kx0, Ky0) pass per call).
PARENT_CHILDREN = 16
MAX_PARENTS = 4000


def _segment_lse(values: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(k,) log sum of e^values over each segment of the sorted labels (N,)."""
    top = torch.full((k,), -float("inf"), dtype=values.dtype, device=values.device)
    top = top.scatter_reduce(0, labels, values, "amax")
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.zeros_like(top).index_add_(0, labels, (values - safe[labels]).exp())
    return safe + total.log()


class _Tree:
    """Parents of the clusters on each side (:func:`shapeot.ot.clusters.coarsen`), for masks
    of many clusters: the dense bounds run on (Kx0, Ky0) parents, and the cluster bounds only
    inside the kept parent pairs, so the cost and memory are O(kept pairs), not O(Kx Ky)."""

    def __init__(self, cx, cy):
        from ..clusters import coarsen

        origin = torch.minimum(cx.centroids.min(0).values, cy.centroids.min(0).values)
        px = coarsen(cx, origin, max(8, min(MAX_PARENTS, cx.k // PARENT_CHILDREN)))
        py = coarsen(cy, origin, max(8, min(MAX_PARENTS, cy.k // PARENT_CHILDREN)))
        x_parent = torch.empty(cx.k, dtype=torch.long)
        x_parent[px.perm.cpu()] = px.labels.cpu()
        ny = cy.offsets[1:] - cy.offsets[:-1]
        ny_parent = torch.zeros(py.k, dtype=torch.float64).index_add_(0, py.labels.cpu(), ny[py.perm].double().cpu())
        self._py = py
        self._np = tuple(t.detach().double().cpu().numpy() for t in (px.centroids, px.radii, py.centroids, py.radii))
        self._ny_parent = ny_parent.numpy()
        self._x_parent = x_parent.numpy()
        self._y_perm, self._y_off = py.perm.cpu().numpy(), py.offsets.cpu().numpy()

    def attempts(self, h_lse: np.ndarray, geo: tuple, eps: float):
        """``attempt(truncate)`` for :meth:`BlockSparseKernel._widened` at this potential and eps."""
        py = self._py
        h0 = _segment_lse(torch.from_numpy(h_lse)[py.perm.cpu()], py.labels.cpu(), py.k).numpy()
        ky = len(h_lse)

        rows, p_lower = fused.tree_lower(h_lse, *geo[:4], h0, *self._np, self._x_parent, self._y_perm, self._y_off,
                                         eps)

        def attempt(trunc):
            keep0, dropped0, count0, _, lower0 = fused.gap_mask(h0, *self._np, self._ny_parent, eps, trunc,
                                                                lower=p_lower)
            p_indptr = np.zeros(len(count0) + 1, dtype=np.int64)
            np.cumsum(count0, out=p_indptr[1:])
            parent_csr = (p_indptr, np.nonzero(keep0)[1])
            indptr, indices, dropped, kept_y = fused.tree_mask(
                h_lse, *geo, self._x_parent, parent_csr, lower0, dropped0, self._y_perm, self._y_off, rows, eps,
                trunc)
            return (indptr, indices, kept_y), float(dropped.max()), int(indptr[-1]) == len(geo[0]) * ky
        return attempt


def _keops_ranges(x_off, y_off, indptr, indices, device):
    """KeOps's block-sparse ranges (ranges_i, slices_i, redranges_j, ranges_j, slices_j,
    redranges_i) for the kept cluster pairs in CSR, and their transpose for reductions over i."""
    def ranges(off):
        return torch.stack([off[:-1], off[1:]], 1)

    indices = indices.long()
    rows = torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr[1:] - indptr[:-1])
    order = torch.sort(indices, stable=True).indices
    col_counts = torch.bincount(indices, minlength=len(y_off) - 1)
    rx, ry = ranges(x_off.cpu()), ranges(y_off.cpu())
    out = (rx, indptr[1:], ry[indices], ry, torch.cumsum(col_counts, 0), rx[rows[order]])
    return tuple(t.int().contiguous().to(device) for t in out)


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
        if engine not in ("numba", "torch", "keops", "triton"):
            raise ValueError(f"engine must be 'auto', 'numba', 'torch', 'keops' or 'triton'; got {engine!r}")
        self.engine = engine
        self.stats = {"calls": 0, "widened": 0, "kept_fraction": 0.0, "max_dropped_bound": 0.0, "tree": False,
                      "mask_builds": 0, "visited_fraction": 0.0}
        # Reuse masks across reductions at one eps where moving them costs (CUDA, Triton).
        self.reuse_masks = x.device.type == "cuda" or engine == "triton"
        self._cached = None  # (eps, h_lse at build, bound at build, csr, runs)
        self._xs, self._ys = x[cx.perm].contiguous(), y[cy.perm].contiguous()
        self._nx = (cx.offsets[1:] - cx.offsets[:-1]).to(x.dtype)
        self._ny = (cy.offsets[1:] - cy.offsets[:-1]).to(x.dtype)
        # The cluster-level mask runs in numba on the CPU whenever numba is there (whatever the
        # engine: its inputs and outputs are O(clusters), not O(points)); without numba, torch
        # builds it from dense (Kx, Ky) bounds.
        self._tree = None
        if fused.available():
            geo = (cx.centroids, cx.radii, cy.centroids, cy.radii, self._ny)
            self._geo = tuple(t.detach().double().cpu().numpy() for t in geo)
            if cx.k * cy.k > DENSE_CELL_PAIRS:
                self._tree = _Tree(cx, cy)
                self.stats["tree"] = True
        else:
            d = torch.cdist(cx.centroids, cy.centroids)  # (Kx, Ky)
            rr = cx.radii[:, None] + cy.radii[None, :]
            self._c_lo = (d - rr).clamp(min=0) ** 2 / 2
            self._c_hi = (d + rr) ** 2 / 2
        if engine == "keops":
            from .keops import KeOpsKernel

            self._keops = KeOpsKernel(self._xs, self._ys)
        elif engine == "numba":
            self._np = (self._xs.numpy(), self._ys.numpy(), cx.offsets.numpy(), cy.offsets.numpy())
        elif engine == "triton":
            pass  # the runs are built from each mask (:meth:`_reduce_triton`)
        else:
            n, m, dim = len(x), len(y), x.shape[1]
            self._xt_idx, self._x_first = _tiles(cx.offsets, n)
            self._yt_idx, self._y_first = _tiles(cy.offsets, m)
            self._xt = torch.cat([self._xs, x.new_zeros(1, dim)])[self._xt_idx]  # (Tx, TILE, D)
            self._yt = torch.cat([self._ys, y.new_zeros(1, dim)])[self._yt_idx]  # (Ty, TILE, D)
            self._x2 = (self._xt**2).sum(-1) / 2
            self._y2 = (self._yt**2).sum(-1) / 2
            self._y_pad = self._yt_idx == m

    def _mask(self, eps: float, hs: torch.Tensor):
        """The CSR mask for this reduction: :meth:`_pairs`, or the cached mask of the same eps
        when the cluster log-masses moved little enough for its bound to stay below ``tol``."""
        if not self.reuse_masks:
            return self._pairs(eps, _segment_lse(hs, self.cy.labels, self.cy.k)), None
        h_lse = _segment_lse(hs, self.cy.labels, self.cy.k)
        c = self._cached
        if c is not None and c[0] == eps:
            fin, fin_old = torch.isfinite(h_lse), torch.isfinite(c[1])
            if bool(torch.equal(fin, fin_old)):
                delta = float((h_lse - c[1])[fin].abs().max()) if bool(fin.any()) else 0.0
                if c[2] * math.exp(min(2.0 * delta, 700.0)) <= self.tol:
                    self.stats["calls"] += 1
                    return c[3], c
        csr = self._pairs(eps, h_lse)
        self._cached = [eps, h_lse, self._last_bound, csr, None]
        return csr, self._cached

    def _pairs(self, eps: float, h_lse: torch.Tensor):
        """The kept cluster pairs for the clusters' log-masses h_lse (Ky,), after the safety
        check, as CSR (indptr (Kx + 1,) int64, indices int32) tensors on the CPU."""
        self.stats["mask_builds"] += 1
        if self._tree is not None:
            attempt = self._tree.attempts(h_lse.detach().double().cpu().numpy(), self._geo, eps)
        elif fused.available():
            h = h_lse.detach().double().cpu().numpy()

            def attempt(trunc):
                keep, dropped, count, kept_y, _ = fused.gap_mask(h, *self._geo, eps, trunc)
                indptr = np.zeros(len(count) + 1, dtype=np.int64)
                np.cumsum(count, out=indptr[1:])
                return (indptr, np.nonzero(keep)[1].astype(np.int32), kept_y), float(dropped.max()), bool(keep.all())
        else:
            attempt = self._dense_attempt(eps, h_lse)
        indptr, indices, kept_y = self._widened(attempt)
        kept = float(self._nx.double().cpu().numpy() @ np.asarray(kept_y, dtype=np.float64))
        self.stats["kept_fraction"] = kept / (len(self.x) * len(self.y))
        return torch.as_tensor(indptr), torch.as_tensor(indices)

    def _dense_attempt(self, eps: float, h_lse: torch.Tensor):
        """Without numba: the mask from dense (Kx, Ky) bounds in torch."""
        upper = h_lse[None, :] - self._c_lo / eps  # (Kx, Ky)
        lower = (h_lse[None, :] - self._c_hi / eps).amax(dim=1)  # (Kx,)
        gap = upper - lower[:, None]

        def attempt(trunc):
            keep = gap >= -trunc
            dropped = torch.where(keep, torch.full_like(gap, -float("inf")), gap)
            indptr = torch.zeros(len(keep) + 1, dtype=torch.long)
            indptr[1:] = torch.cumsum(keep.sum(1), 0).cpu()
            kept_y = (keep.to(self._ny.dtype) @ self._ny).double().cpu().numpy()
            csr = (indptr.numpy(), keep.nonzero()[:, 1].int().cpu().numpy(), kept_y)
            return csr, float(torch.logsumexp(dropped, dim=1).exp().max()), bool(keep.all())
        return attempt

    def _widened(self, attempt):
        """The safety check: ``attempt(truncate) -> (mask, bound on the skipped mass of a row,
        everything kept)``, retried with a larger truncate until the bound is below ``tol``."""
        trunc = self.truncate
        while True:
            mask, bound, everything = attempt(trunc)
            if bound <= self.tol or everything:
                break
            # Every dropped pair is below e^-trunc: a step of log(bound / tol) (at least 1, at
            # most 5) usually lands just under the tolerance, which keeps the mask tight.
            trunc += min(5.0, max(1.0, math.log(bound / self.tol) + 1.0))
            self.stats["widened"] += 1
        # The widening a row needed at one eps is needed at the next ones too (the bounds' slack
        # grows as eps falls): keep it, rather than re-testing the tight masks at every call.
        self.truncate = trunc
        self.stats["calls"] += 1
        self.stats["max_dropped_bound"] = max(self.stats["max_dropped_bound"], bound)
        self._last_bound = 0.0 if everything else bound
        return mask

    def _reduce(self, eps: float, h: torch.Tensor, v: torch.Tensor | None):
        hs = h[self.cy.perm]
        csr, cache = self._mask(eps, hs)
        if self.engine == "numba":
            return self._reduce_numba(eps, hs, csr, v)
        if self.engine == "keops":
            return self._reduce_keops(eps, hs, csr, v)
        if self.engine == "triton":
            return self._reduce_triton(eps, hs, csr, v, cache)
        return self._reduce_torch(eps, hs, csr, v)

    def _reduce_triton(self, eps, hs, csr, v, cache):
        from . import triton as tri

        runs = None if cache is None else cache[4]
        if runs is None:  # once per mask: the tiles' runs of columns, built on the device
            runs = tri.Runs.from_csr(self.cx.offsets, self.cy.offsets, *csr)
            if cache is not None:
                cache[4] = runs
            self.stats["visited_fraction"] = runs.pairs / (len(self.x) * len(self.y))
        vs = None if v is None else v[self.cy.perm]
        lse_s, mean_s = tri.lse_runs(self._xs, self._ys, hs, eps, runs, vs)
        out = torch.empty_like(lse_s)
        out[self.cx.perm] = lse_s
        mean = None
        if v is not None:
            mean = torch.empty_like(mean_s)
            mean[self.cx.perm] = mean_s
        return out, mean

    def _reduce_numba(self, eps, hs, csr, v):
        indptr, indices = (t.numpy() for t in csr)
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

    def _reduce_keops(self, eps, hs, csr, v):
        # KeOps's block-sparse mode: the same compiled formula as the online backend, scheduled
        # over the kept cluster pairs only.
        formula = self._keops._formula(eps, hs)
        formula.ranges = _keops_ranges(self.cx.offsets, self.cy.offsets, *csr, self.x.device)
        lse_s = formula.logsumexp(dim=1)[:, 0]
        out = torch.empty(len(self.x), dtype=self.x.dtype, device=self.x.device)
        out[self.cx.perm] = lse_s
        mean = None
        if v is not None:
            vj = self._keops._LazyTensor(v[self.cy.perm].contiguous()[None, :, :])
            mean = torch.empty(len(self.x), v.shape[1], dtype=self.x.dtype, device=self.x.device)
            mean[self.cx.perm] = formula.sumsoftmaxweight(vj, dim=1)
        return out, mean

    def _reduce_torch(self, eps, hs, csr, v):
        n, dt, dev = len(self.x), self.x.dtype, self.x.device
        indptr, jj = (t.to(dev).long() for t in csr)
        ii = torch.repeat_interleave(torch.arange(len(indptr) - 1, device=dev), indptr[1:] - indptr[:-1])
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
