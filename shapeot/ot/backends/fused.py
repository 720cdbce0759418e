r"""A fused CPU kernel for the block-sparse log-sum-exp (numba, parallel over clusters).

For each point x_i of cluster I and each kept cluster J (CSR ``indptr``, ``indices``), the
exponents t_j = h_j - |x_i - y_j|^2 / (2 eps) of the cluster go to a small buffer with their max,
the running sums are rescaled once per cluster if that max is a new one (a streaming log-sum-exp
at cluster granularity), then the exponentials are summed without a branch. No cost block is
ever written to main memory, which is what makes it several times faster than the
batched-matmul path on a CPU (Milakov & Gimelshein, "Online normalizer calculation for
softmax", 2018, for the streaming update; Charlier et al., JMLR 2021, for the map-reduce idea).

float32 has a second kernel that vectorises: numba's ``math.exp`` is a scalar libm call (the PyPI
llvmlite has no SVML), which capped the kernel near 0.25 billion pairs/s on 2 cores. The float32
kernel writes one row's exponents over *all* its kept clusters to a buffer, takes their max once,
and evaluates exp with a branch-free Cody-Waite reduction and a degree-6 polynomial, building
2^k from the exponent bits (Cody & Waite, "Software Manual for the Elementary Functions", 1980;
the scheme of Cephes' expf). Relative error <= 2e-7, i.e. float32 rounding; the loops are
SIMD-vectorised by LLVM (about 5x the scalar-exp kernel per core in
``benchmarks/fused_kernel.py``).
"""
from __future__ import annotations

import math

import numpy as np


def _row_f64():
    """The f64 kernel's row reduction (a streaming log-sum-exp over the row's kept clusters),
    inlined into :func:`_build`'s kernel."""
    from numba import njit

    @njit(inline="always")
    def exponents(xs, ys, h, half_ieps, i, j0, nj, t):
        # Pass 1 over a cluster: the exponents t_j and their max (no exp, no branch).
        bm = -np.inf
        for jj in range(nj):
            j = j0 + jj
            d2 = 0.0
            for k in range(xs.shape[1]):
                diff = xs[i, k] - ys[j, k]
                d2 += diff * diff
            tj = h[j] - d2 * half_ieps
            t[jj] = tj
            bm = max(bm, tj)
        return bm

    @njit(inline="always")
    def exp_sum(t, nj, m, v, j0, want_mean, acc):
        # Pass 2: the exponentials relative to the running max m, and their v-weighted sums.
        s = 0.0
        if want_mean:
            for jj in range(nj):
                w = math.exp(t[jj] - m)
                s += w
                for q in range(len(acc)):
                    acc[q] += w * v[j0 + jj, q]
        else:
            for jj in range(nj):
                s += math.exp(t[jj] - m)
        return s

    @njit(inline="always")
    def row(xs, ys, h, half_ieps, i, c, yoff, indptr, indices, v, want_mean, t, acc):
        # Streaming log-sum-exp of row i over its kept clusters: (running max, sum relative to it).
        m = -np.inf
        s = 0.0
        acc[:] = 0.0
        for p in range(indptr[c], indptr[c + 1]):
            j0 = yoff[indices[p]]
            nj = yoff[indices[p] + 1] - j0
            bm = exponents(xs, ys, h, half_ieps, i, j0, nj, t)
            if bm == -np.inf:
                continue
            if bm > m:  # rescale the running sums once per cluster, not once per point
                r = math.exp(m - bm) if m > -np.inf else 0.0
                s *= r
                acc *= r
                m = bm
            s += exp_sum(t, nj, m, v, j0, want_mean, acc)
        return m, s

    return row


def _build():
    from numba import njit, prange

    row = _row_f64()

    @njit(parallel=True, fastmath=False, cache=True)
    def lse_csr(xs, ys, h, half_ieps, xoff, yoff, indptr, indices, v, want_mean, out_lse, out_mean):
        max_cluster = 0
        for cj in range(len(yoff) - 1):
            max_cluster = max(max_cluster, yoff[cj + 1] - yoff[cj])
        for c in prange(len(xoff) - 1):
            acc = np.zeros(v.shape[1], dtype=xs.dtype)
            t = np.empty(max_cluster, dtype=xs.dtype)
            for i in range(xoff[c], xoff[c + 1]):
                m, s = row(xs, ys, h, half_ieps, i, c, yoff, indptr, indices, v, want_mean, t, acc)
                out_lse[i] = m + math.log(s) if s > 0 else -np.inf
                if want_mean:
                    for q in range(len(acc)):
                        out_mean[i, q] = acc[q] / s if s > 0 else 0.0

    return lse_csr


# No 'nnan'/'ninf': h may hold -inf (zero weights), and max() must see it.
_F32_FLAGS = {"reassoc", "contract", "nsz", "arcp"}


def _row_f32():
    """The f32 kernel's passes over one row, inlined into :func:`_build_f32`'s kernel:
    (exponents and their max, the polynomial exp and its sum, the weighted means)."""
    from numba import njit

    flags = _F32_FLAGS

    @njit(inline="always", fastmath=flags)
    def row_exponents(xs, yt, h, half_ieps, i, c, yoff, indptr, indices, t):
        # Pass 1: the exponents of row i over all its kept clusters, into t; their max.
        f32 = np.float32
        pos = 0
        for p in range(indptr[c], indptr[c + 1]):
            j0 = yoff[indices[p]]
            nj = yoff[indices[p] + 1] - j0
            for jj in range(nj):
                d2 = f32(0.0)
                for k in range(xs.shape[1]):
                    diff = xs[i, k] - yt[k, j0 + jj]
                    d2 += diff * diff
                t[pos + jj] = h[j0 + jj] - d2 * half_ieps
            pos += nj
        m = f32(-np.inf)
        for q in range(len(t)):
            m = max(m, t[q])
        return m

    @njit(inline="always", fastmath=flags)
    def exp_shifted(t, bits, two_k, m):
        # Pass 2: t <- exp(t - m) = 2^k exp(r), k = round((t - m) / ln 2), |r| <= ln(2) / 2; the sum.
        f32 = np.float32
        for q in range(len(t)):
            z = max(t[q] - m, f32(-87.0))
            kf = np.floor(z * f32(1.44269504) + f32(0.5))
            r = z - kf * f32(0.693359375) + kf * f32(2.12194440e-4)
            t[q] = f32(1.0) + r * (f32(1.0) + r * (f32(0.5) + r * (f32(1.66666672e-1) + r * (
                f32(4.16666679e-2) + r * (f32(8.33345205e-3) + r * f32(1.38888889e-3))))))
            bits[q] = (np.int32(kf) + np.int32(127)) << 23
        s = f32(0.0)
        for q in range(len(t)):
            w = t[q] * two_k[q]
            t[q] = w
            s += w
        return s

    @njit(inline="always", fastmath=flags)
    def row_means(t, v, c, yoff, indptr, indices, s, out_mean, i):
        # v is (E, M): one unit-stride (vectorised) dot product per component.
        for q in range(v.shape[0]):
            a_q = np.float32(0.0)
            pos = 0
            for p in range(indptr[c], indptr[c + 1]):
                j0 = yoff[indices[p]]
                nj = yoff[indices[p] + 1] - j0
                for jj in range(nj):
                    a_q += t[pos + jj] * v[q, j0 + jj]
                pos += nj
            out_mean[i, q] = a_q / s

    return row_exponents, exp_shifted, row_means


def _build_f32():
    from numba import njit, prange

    row_exponents, exp_shifted, row_means = _row_f32()

    @njit(parallel=True, fastmath=_F32_FLAGS, cache=True)
    def lse_csr_f32(xs, yt, h, half_ieps, xoff, yoff, indptr, indices, v, want_mean, out_lse, out_mean):
        for c in prange(len(xoff) - 1):
            width = 0
            for p in range(indptr[c], indptr[c + 1]):
                width += yoff[indices[p] + 1] - yoff[indices[p]]
            t = np.empty(width, dtype=np.float32)
            bits = np.empty(width, dtype=np.int32)
            two_k = bits.view(np.float32)
            for i in range(xoff[c], xoff[c + 1]):
                m = row_exponents(xs, yt, h, half_ieps, i, c, yoff, indptr, indices, t)
                if m == -np.inf:
                    out_lse[i] = -np.inf
                    if want_mean:
                        out_mean[i, :] = 0.0
                    continue
                s = exp_shifted(t, bits, two_k, m)
                out_lse[i] = m + np.log(s)
                if want_mean:
                    row_means(t, v, c, yoff, indptr, indices, s, out_mean, i)

    return lse_csr_f32


_COSTS = None


def _costs():
    """Bounds on C(x, y) = |x - y|^2 / 2 over the balls (xc_i, xr_i) and (yc_j, yr_j): the one
    helper every mask kernel inlines."""
    global _COSTS
    if _COSTS is None:
        from numba import njit

        @njit(inline="always")
        def costs(xc, xr, yc, yr, i, j):
            d2 = 0.0
            for k in range(xc.shape[1]):
                diff = xc[i, k] - yc[j, k]
                d2 += diff * diff
            d = math.sqrt(d2)
            rr = xr[i] + yr[j]
            near = max(0.0, d - rr)
            return 0.5 * near * near, 0.5 * (d + rr) * (d + rr)

        _COSTS = costs
    return _COSTS


def _build_gap_mask():
    from numba import njit, prange

    costs = _costs()

    @njit(inline="always")
    def row_lower(h_lse, xc, xr, yc, yr, i, inv_eps, lower):
        for j in range(len(yc)):
            lower = max(lower, h_lse[j] - costs(xc, xr, yc, yr, i, j)[1] * inv_eps)
        return lower

    @njit(parallel=True, cache=True)
    def gap_mask(h_lse, xc, xr, yc, yr, ny, inv_eps, trunc, lower_in, keep, dropped, count, kept_y, lower_out):
        kx, ky = keep.shape
        for i in prange(kx):
            n_keep = 0
            y_keep = 0.0
            lower = row_lower(h_lse, xc, xr, yc, yr, i, inv_eps, lower_in[i])
            s = 0.0
            for j in range(ky):
                # lower == -inf: no mass anywhere near, keep the row whole.
                g = h_lse[j] - costs(xc, xr, yc, yr, i, j)[0] * inv_eps - lower if lower > -np.inf else 0.0
                keep[i, j] = g >= -trunc
                if keep[i, j]:
                    n_keep += 1
                    y_keep += ny[j]
                else:
                    s += math.exp(g)
            dropped[i] = s
            count[i] = n_keep
            kept_y[i] = y_keep
            lower_out[i] = lower

    return gap_mask


def _build_tree_mask():
    from numba import njit, prange

    costs = _costs()

    @njit(parallel=True, cache=True)
    def tree_mask(h_lse, xc, xr, yc, yr, ny, x_parent, p_indptr, p_indices, p_lower, p_dropped, y_perm, y_off,
                  row_lower, inv_eps, trunc, fill, indptr, indices, dropped, count, kept_y):
        for i in prange(len(xc)):
            par = x_parent[i]
            lower = max(row_lower[i], p_lower[par])
            n_keep = 0
            y_keep = 0.0
            s = 0.0
            pos = indptr[i] if fill else 0
            for p in range(p_indptr[par], p_indptr[par + 1]):
                q = p_indices[p]
                for t in range(y_off[q], y_off[q + 1]):
                    j = y_perm[t]
                    g = h_lse[j] - costs(xc, xr, yc, yr, i, j)[0] * inv_eps - lower if lower > -np.inf else 0.0
                    if g >= -trunc:
                        if fill:
                            indices[pos + n_keep] = j
                        n_keep += 1
                        y_keep += ny[j]
                    elif fill:
                        s += math.exp(g)
            if fill:
                # The parent pairs dropped wholesale: their bound was relative to the parent's lower.
                if p_dropped[par] > 0.0:
                    s += p_dropped[par] * math.exp(p_lower[par] - lower)
                dropped[i] = s
                kept_y[i] = y_keep
            count[i] = n_keep

    return tree_mask


def _build_best_pairs():
    from numba import njit, prange

    costs = _costs()

    @njit(parallel=True, cache=True)
    def best_pairs(h_lse, xc, xr, yc, yr, inv_eps, best_u, best_l):
        # Per row: the column of the largest upper bound U and of the largest lower-bound term.
        for i in prange(len(xc)):
            u_max, l_max = -np.inf, -np.inf
            best_u[i], best_l[i] = 0, 0
            for j in range(len(yc)):
                lo, hi = costs(xc, xr, yc, yr, i, j)
                u, low = h_lse[j] - lo * inv_eps, h_lse[j] - hi * inv_eps
                if u > u_max:
                    u_max, best_u[i] = u, j
                if low > l_max:
                    l_max, best_l[i] = low, j

    return best_pairs


def _build_child_lower():
    from numba import njit, prange

    costs = _costs()

    @njit(parallel=True, cache=True)
    def child_lower(h_lse, xc, xr, yc, yr, x_parent, best_u, best_l, y_perm, y_off, inv_eps, out):
        # A lower bound of each row's lse from the children of its parent's two best parents.
        for i in prange(len(xc)):
            par = x_parent[i]
            lower = -np.inf
            for q in (best_u[par], best_l[par]):
                for t in range(y_off[q], y_off[q + 1]):
                    j = y_perm[t]
                    lower = max(lower, h_lse[j] - costs(xc, xr, yc, yr, i, j)[1] * inv_eps)
            out[i] = lower

    return child_lower


def _build_masks():
    """(gap_mask, tree_mask, best_pairs, child_lower), compiled on first use."""
    return _build_gap_mask(), _build_tree_mask(), _build_best_pairs(), _build_child_lower()


_MASKS = None


def _masks():
    global _MASKS
    if _MASKS is None:
        _MASKS = _build_masks()
    return _MASKS


def gap_mask(h_lse, xc, xr, yc, yr, ny, eps, trunc, lower=None):
    r"""keep(I, J) = [U(I, J) - L(I) >= -trunc] and, per row, the bound sum_{J dropped} e^{U - L}
    on the relative mass left out (bounds of :mod:`.blocksparse`), in one fused pass; the cost
    bounds come from the clusters' centres and radii on the fly (no (Kx, Ky) arrays kept).

    h_lse (Ky,), xc (Kx, D), xr (Kx,), yc (Ky, D), yr (Ky,), ny (Ky,) cluster sizes, float64
    numpy. Returns (keep (Kx, Ky) bool, bound (Kx,), kept clusters per row (Kx,) int64, kept
    points per row (Kx,), lower bound L (Kx,)). ``lower`` (Kx,): known lower bounds of the
    rows' lse, used when larger than the clusters' own (a tighter L keeps fewer pairs).
    """
    kx, ky = len(xc), len(yc)
    keep = np.empty((kx, ky), dtype=np.bool_)
    lower_in = np.full(kx, -np.inf) if lower is None else lower
    dropped, count, kept_y, lower_out = np.empty(kx), np.empty(kx, dtype=np.int64), np.empty(kx), np.empty(kx)
    _masks()[0](h_lse, xc, xr, yc, yr, ny, 1.0 / eps, float(trunc), lower_in, keep, dropped, count, kept_y, lower_out)
    return keep, dropped, count, kept_y, lower_out


def tree_lower(h_lse, xc, xr, yc, yr, h_parent, pxc, pxr, pyc, pyr, x_parent, y_perm, y_off, eps):
    r"""Lower bounds of the rows' lse from the children of two parents: for each child row I of
    parent P, L(I) = max_J (h_J - C_hi(I, J) / eps) over the children J of the two parents Q
    most likely to hold P's mass (largest upper bound, largest lower-bound term). Child bounds
    are much tighter than the parents' (radii several times smaller), so :func:`tree_mask` keeps
    far fewer pairs with them. Returns (per child row (Kx,), per parent row: their min (Kx0,)).
    """
    k0 = len(pxc)
    best_u, best_l = np.empty(k0, dtype=np.int64), np.empty(k0, dtype=np.int64)
    masks = _masks()
    masks[2](h_parent, pxc, pxr, pyc, pyr, 1.0 / eps, best_u, best_l)
    rows = np.empty(len(xc))
    masks[3](h_lse, xc, xr, yc, yr, x_parent, best_u, best_l, y_perm, y_off, 1.0 / eps, rows)
    parents = np.full(k0, np.inf)
    np.minimum.at(parents, x_parent, rows)
    return rows, parents


def tree_mask(h_lse, xc, xr, yc, yr, ny, x_parent, parent_csr, p_lower, p_dropped, y_perm, y_off, row_lower, eps,
              trunc):
    r"""The mask of :func:`gap_mask` for many clusters, visiting only the children of the parent
    pairs kept one level up (``parent_csr`` = (indptr, indices) of that mask, ``p_lower`` and
    ``p_dropped`` its lower bounds and dropped-mass bounds). The bound of a row adds the mass of
    the parent pairs dropped wholesale. y_perm / y_off: y's clusters sorted by parent, and each
    parent's range in that order; row_lower (Kx,): lower bounds of the rows (:func:`tree_lower`).
    Returns (indptr (Kx + 1,), indices, bound (Kx,), kept points per row (Kx,)).
    """
    kx = len(xc)
    dropped, count, kept_y = np.empty(kx), np.empty(kx, dtype=np.int64), np.empty(kx)
    args = (h_lse, xc, xr, yc, yr, ny, x_parent, parent_csr[0], parent_csr[1], p_lower, p_dropped, y_perm, y_off,
            row_lower, 1.0 / eps, float(trunc))
    indptr = np.zeros(kx + 1, dtype=np.int64)
    kernel = _masks()[1]
    kernel(*args, False, indptr, np.empty(0, dtype=np.int32), dropped, count, kept_y)
    np.cumsum(count, out=indptr[1:])
    # int32 column indices: 10^8 kept cluster pairs at 10^6 points, 0.4 GB instead of 0.8.
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    kernel(*args, True, indptr, indices, dropped, count, kept_y)
    return indptr, indices, dropped, kept_y


_KERNEL_F32 = None

_KERNEL = None


def available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def lse_csr(xs, ys, h, eps, xoff, yoff, indptr, indices, v=None):
    """Numpy in, numpy out: (N,) lse and (N, E) weighted means (or None) over the CSR pairs."""
    global _KERNEL, _KERNEL_F32
    n = len(xs)
    if xs.dtype == np.float32:
        if _KERNEL_F32 is None:
            _KERNEL_F32 = _build_f32()
        want = v is not None
        vv = np.ascontiguousarray(v.T) if want else np.zeros((1, 1), dtype=np.float32)  # (E, M)
        out = np.empty(n, dtype=np.float32)
        mean = np.empty((n, vv.shape[0]), dtype=np.float32) if want else np.zeros((1, 1), dtype=np.float32)
        yt = np.ascontiguousarray(ys.T)  # (D, M): unit-stride loads in the vectorised loop
        _KERNEL_F32(xs, yt, h, np.float32(0.5 / eps), xoff, yoff, indptr, indices, vv, want, out, mean)
        return out, (mean if want else None)
    if _KERNEL is None:
        _KERNEL = _build()
    out = np.empty(n, dtype=xs.dtype)
    want = v is not None
    vv = v if want else np.zeros((1, 1), dtype=xs.dtype)
    mean = np.empty((n, vv.shape[1]), dtype=xs.dtype) if want else np.zeros((1, 1), dtype=xs.dtype)
    _KERNEL(xs, ys, h, xs.dtype.type(0.5 / eps), xoff, yoff, indptr, indices, vv, want, out, mean)
    return out, (mean if want else None)
