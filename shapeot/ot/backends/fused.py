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


def _build():
    from numba import njit, prange

    @njit(parallel=True, fastmath=False, cache=True)
    def lse_csr(xs, ys, h, half_ieps, xoff, yoff, indptr, indices, v, want_mean, out_lse, out_mean):
        n_clusters = len(xoff) - 1
        d = xs.shape[1]
        e = v.shape[1]
        max_cluster = 0
        for cj in range(len(yoff) - 1):
            max_cluster = max(max_cluster, yoff[cj + 1] - yoff[cj])
        for c in prange(n_clusters):
            acc = np.zeros(e, dtype=xs.dtype)
            t = np.empty(max_cluster, dtype=xs.dtype)
            for i in range(xoff[c], xoff[c + 1]):
                m = -np.inf
                s = 0.0
                if want_mean:
                    acc[:] = 0.0
                for p in range(indptr[c], indptr[c + 1]):
                    cj = indices[p]
                    j0 = yoff[cj]
                    nj = yoff[cj + 1] - j0
                    # Pass 1 over the cluster: exponents and their max (no exp, no branch).
                    bm = -np.inf
                    for jj in range(nj):
                        j = j0 + jj
                        d2 = 0.0
                        for k in range(d):
                            diff = xs[i, k] - ys[j, k]
                            d2 += diff * diff
                        tj = h[j] - d2 * half_ieps
                        t[jj] = tj
                        bm = max(bm, tj)
                    if bm == -np.inf:
                        continue
                    if bm > m:  # rescale the running sums once per cluster, not once per point
                        r = math.exp(m - bm) if m > -np.inf else 0.0
                        s *= r
                        if want_mean:
                            for q in range(e):
                                acc[q] *= r
                        m = bm
                    # Pass 2: the exponentials, relative to the running max.
                    if want_mean:
                        for jj in range(nj):
                            w = math.exp(t[jj] - m)
                            s += w
                            for q in range(e):
                                acc[q] += w * v[j0 + jj, q]
                    else:
                        for jj in range(nj):
                            s += math.exp(t[jj] - m)
                out_lse[i] = m + math.log(s) if s > 0 else -np.inf
                if want_mean:
                    for q in range(e):
                        out_mean[i, q] = acc[q] / s if s > 0 else 0.0

    return lse_csr


def _build_f32():
    from numba import njit, prange

    # No 'nnan'/'ninf': h may hold -inf (zero weights), and max() must see it.
    flags = {"reassoc", "contract", "nsz", "arcp"}

    @njit(parallel=True, fastmath=flags, cache=True)
    def lse_csr_f32(xs, yt, h, half_ieps, xoff, yoff, indptr, indices, v, want_mean, out_lse, out_mean):
        f32 = np.float32
        d = xs.shape[1]
        e = v.shape[1]
        for c in prange(len(xoff) - 1):
            width = 0
            for p in range(indptr[c], indptr[c + 1]):
                width += yoff[indices[p] + 1] - yoff[indices[p]]
            t = np.empty(width, dtype=np.float32)
            bits = np.empty(width, dtype=np.int32)
            two_k = bits.view(np.float32)
            acc = np.zeros(e, dtype=np.float32)
            for i in range(xoff[c], xoff[c + 1]):
                # Pass 1: exponents of the row over all its kept clusters, and their max.
                pos = 0
                for p in range(indptr[c], indptr[c + 1]):
                    j0 = yoff[indices[p]]
                    nj = yoff[indices[p] + 1] - j0
                    for jj in range(nj):
                        d2 = f32(0.0)
                        for k in range(d):
                            diff = xs[i, k] - yt[k, j0 + jj]
                            d2 += diff * diff
                        t[pos + jj] = h[j0 + jj] - d2 * half_ieps
                    pos += nj
                m = f32(-np.inf)
                for q in range(width):
                    m = max(m, t[q])
                if m == -np.inf:
                    out_lse[i] = -np.inf
                    if want_mean:
                        for q in range(e):
                            out_mean[i, q] = 0.0
                    continue
                # Pass 2: exp(t - m) = 2^k exp(r), k = round((t - m) / ln 2), |r| <= ln(2) / 2.
                for q in range(width):
                    z = max(t[q] - m, f32(-87.0))
                    kf = np.floor(z * f32(1.44269504) + f32(0.5))
                    r = z - kf * f32(0.693359375) + kf * f32(2.12194440e-4)
                    t[q] = f32(1.0) + r * (f32(1.0) + r * (f32(0.5) + r * (f32(1.66666672e-1) + r * (
                        f32(4.16666679e-2) + r * (f32(8.33345205e-3) + r * f32(1.38888889e-3))))))
                    bits[q] = (np.int32(kf) + np.int32(127)) << 23
                s = f32(0.0)
                for q in range(width):
                    w = t[q] * two_k[q]
                    t[q] = w
                    s += w
                out_lse[i] = m + np.log(s)
                if want_mean:
                    for q in range(e):
                        acc[q] = 0.0
                    pos = 0
                    for p in range(indptr[c], indptr[c + 1]):
                        j0 = yoff[indices[p]]
                        nj = yoff[indices[p] + 1] - j0
                        for jj in range(nj):
                            for q in range(e):
                                acc[q] += t[pos + jj] * v[j0 + jj, q]
                        pos += nj
                    for q in range(e):
                        out_mean[i, q] = acc[q] / s

    return lse_csr_f32


def _build_mask():
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def gap_mask(h_lse, c_lo, c_hi, ny, inv_eps, trunc, keep, dropped, count, kept_y):
        kx, ky = c_lo.shape
        for i in prange(kx):
            n_keep = 0
            y_keep = 0.0
            lower = -np.inf
            for j in range(ky):
                lower = max(lower, h_lse[j] - c_hi[i, j] * inv_eps)
            s = 0.0
            for j in range(ky):
                # lower == -inf: no mass anywhere near, keep the row whole.
                g = h_lse[j] - c_lo[i, j] * inv_eps - lower if lower > -np.inf else 0.0
                k = g >= -trunc
                keep[i, j] = k
                if k:
                    n_keep += 1
                    y_keep += ny[j]
                else:
                    s += math.exp(g)
            dropped[i] = s
            count[i] = n_keep
            kept_y[i] = y_keep

    return gap_mask


_MASK = None


def gap_mask(h_lse, c_lo, c_hi, ny, eps, trunc):
    r"""keep(I, J) = [U(I, J) - L(I) >= -trunc] and, per row, the bound sum_{J dropped} e^{U - L}
    on the relative mass left out (bounds of :mod:`.blocksparse`), in one fused pass.

    h_lse (Ky,), c_lo and c_hi (Kx, Ky), ny (Ky,) cluster sizes, float64 numpy. Returns
    (keep (Kx, Ky) bool, bound (Kx,), kept clusters per row (Kx,) int64, kept points per row (Kx,)).
    """
    global _MASK
    if _MASK is None:
        _MASK = _build_mask()
    kx = c_lo.shape[0]
    keep = np.empty(c_lo.shape, dtype=np.bool_)
    dropped, count, kept_y = np.empty(kx), np.empty(kx, dtype=np.int64), np.empty(kx)
    _MASK(h_lse, c_lo, c_hi, ny, 1.0 / eps, float(trunc), keep, dropped, count, kept_y)
    return keep, dropped, count, kept_y


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
        vv = v if want else np.zeros((1, 1), dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        mean = np.empty((n, vv.shape[1]), dtype=np.float32) if want else np.zeros((1, 1), dtype=np.float32)
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
