r"""The ``triton`` backend: fused, flash-style log-sum-exp reductions on the GPU.

One kernel serves every mode. The rows x (sorted by cluster in multiscale mode) are cut into
tiles of ``BLOCK_X`` consecutive rows; each tile owns a list of *runs*, contiguous ranges
[y0, y1) of the (sorted) columns y, and one program reduces its tile over its runs:

* all pairs ("online" mode, any D): one run [0, M) for every tile;
* block-sparse (multiscale mode): the kept cluster pairs of the CSR mask that
  :class:`.blocksparse.BlockSparseKernel` builds (``indptr``/``indices`` over the clusters,
  ``x_off``/``y_off`` their ranges of sorted points), merged per tile: the union of the kept
  y-clusters of the x-clusters that meet the tile, consecutive clusters fused into one run.
  Visiting a superset of the kept pairs only adds terms, so it is never less accurate.

Inside a program the x tile stays in registers; the loop walks the runs in chunks of
``BLOCK_Y`` columns, forms s_ij = h_j - |x_i - y_j|^2 / (2 eps) by direct differences (no
|x|^2 + |y|^2 - 2<x, y> cancellation), and keeps a running max m_i, a rescaled running sum
l_i = sum_j e^{s_ij - m_i} and, for ``lse_mean``, a rescaled running sum of e^{s_ij - m_i} v_j:
the online softmax of Milakov & Gimelshein (2018) and the tiling of FlashAttention (Dao, Fu,
Ermon, Rudra, Re, NeurIPS 2022), applied to the Sinkhorn soft-min as in Feydy's thesis (2020,
sec. 3.3) and the KeOps map-reduce scheme (Charlier et al., JMLR 2021). Nothing of size N x M
is ever written; memory is O((N + M) (D + E)) plus the runs. Accumulation is in the inputs'
precision (float32 or float64).

Triton compiles for CUDA. Under ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors
(slowly: NumPy per block), which is how the tests check them on machines without a GPU.
``import triton`` happens inside functions only: importing this module costs nothing.
"""
from __future__ import annotations

import os
import threading

import torch

from .base import KernelSet

# Tile sizes: rows and columns of one program's block, and the largest gap (in columns) between
# two kept runs of a tile that is filled in rather than started anew (a few extra pairs cost
# less than another trip round the loop). The interpreter pays per operation, not per element:
# it gets far larger blocks and gaps (more pairs visited, far fewer operations).
BLOCK_X, BLOCK_Y, GAP = 64, 64, 32
INTERPRET_BLOCK_X, INTERPRET_BLOCK_Y, INTERPRET_GAP = 256, 512, 256

_lock = threading.Lock()
_kernels: dict[bool, object] = {}
_verdicts: dict[tuple, tuple[bool, str]] = {}


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


def _kernel():
    """The compiled (or interpreted) kernel; built at first use, once per interpreter mode
    (``triton.jit`` decides between the two when it decorates)."""
    mode = interpreting()
    with _lock:
        if mode not in _kernels:
            _kernels[mode] = _build()
        return _kernels[mode]


def _build():
    import triton
    import triton.language as tl

    @triton.jit
    def _lse_kernel(xs, ys, h, v, ieps_ptr, out_lse, out_mean, run_ptr, run_y0, run_y1, n_rows,
                 D: tl.constexpr, E: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_X: tl.constexpr,
                 BLOCK_Y: tl.constexpr, WANT_MEAN: tl.constexpr):
        tile = tl.program_id(0)
        rows = tile * BLOCK_X + tl.arange(0, BLOCK_X)
        row_ok = rows < n_rows
        half_ieps = tl.load(ieps_ptr)  # 1 / (2 eps), in the data's precision
        zero = tl.zeros([BLOCK_X], dtype=half_ieps.dtype)
        m = zero - float("inf")  # running max of s_ij
        l_sum = zero  # running sum of e^{s_ij - m_i}
        acc = tl.zeros([BLOCK_X, BLOCK_E], dtype=half_ieps.dtype)
        e_idx = tl.arange(0, BLOCK_E)
        p0 = tl.load(run_ptr + tile)
        p1 = tl.load(run_ptr + tile + 1)
        for p in range(p0, p1):
            y0 = tl.load(run_y0 + p)
            y1 = tl.load(run_y1 + p)
            for j0 in range(y0, y1, BLOCK_Y):
                cols = j0 + tl.arange(0, BLOCK_Y)
                col_ok = cols < y1
                d2 = tl.zeros([BLOCK_X, BLOCK_Y], dtype=half_ieps.dtype)
                for k in tl.static_range(D):
                    xk = tl.load(xs + rows * D + k, mask=row_ok, other=0.0)
                    yk = tl.load(ys + cols * D + k, mask=col_ok, other=0.0)
                    diff = xk[:, None] - yk[None, :]
                    d2 += diff * diff
                hj = tl.load(h + cols, mask=col_ok, other=float("-inf"))
                s = hj[None, :] - d2 * half_ieps
                m_new = tl.maximum(m, tl.max(s, axis=1))
                m_safe = tl.where(m_new > float("-inf"), m_new, 0.0)  # rows with nothing yet
                alpha = tl.exp(m - m_safe)
                w = tl.exp(s - m_safe[:, None])
                l_sum = l_sum * alpha + tl.sum(w, axis=1)
                if WANT_MEAN:
                    vj = tl.load(v + cols[:, None] * E + e_idx[None, :],
                                 mask=col_ok[:, None] & (e_idx[None, :] < E), other=0.0)
                    acc = acc * alpha[:, None] + tl.sum(w[:, :, None] * vj[None, :, :], axis=1)
                m = m_new
        lse = m + tl.log(l_sum)
        tl.store(out_lse + rows, lse, mask=row_ok)
        if WANT_MEAN:
            denom = tl.where(l_sum > 0.0, l_sum, 1.0)
            mean = acc / denom[:, None]
            tl.store(out_mean + rows[:, None] * E + e_idx[None, :], mean,
                     mask=row_ok[:, None] & (e_idx[None, :] < E))

    return _lse_kernel


def blocks() -> tuple[int, int, int]:
    """(rows per tile, columns per chunk, largest gap filled in) for the current mode."""
    if interpreting():
        return INTERPRET_BLOCK_X, INTERPRET_BLOCK_Y, INTERPRET_GAP
    return BLOCK_X, BLOCK_Y, GAP


class Runs:
    """A tiling of the rows and, per tile, the column runs it reduces over (device tensors).

    ptr (T + 1,) int64: tile t owns runs ptr[t]:ptr[t+1]; y0, y1 (R,) int64: the runs' column
    ranges. ``pairs`` counts the (row, column) pairs visited, for the statistics.
    """

    def __init__(self, ptr: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, pairs: int, block_x: int):
        self.ptr, self.y0, self.y1, self.pairs, self.block_x = ptr, y0, y1, pairs, block_x

    @staticmethod
    def all_pairs(n: int, m: int, device) -> "Runs":
        """Every tile reduces over all of y: one run [0, m) each."""
        bx = blocks()[0]
        t = (n + bx - 1) // bx
        ptr = torch.arange(t + 1, dtype=torch.long, device=device)
        return Runs(ptr, torch.zeros(t, dtype=torch.long, device=device),
                    torch.full((t,), m, dtype=torch.long, device=device), n * m, bx)

    @staticmethod
    def from_csr(x_off: torch.Tensor, y_off: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor,
                 block_x: int | None = None, gap: int | None = None) -> "Runs":
        """Runs of the tiles of ``block_x`` sorted rows from a CSR mask over clusters.

        x_off (Kx + 1,), y_off (Ky + 1,): the clusters' ranges of sorted points; indptr
        (Kx + 1,), indices (nnz,): the kept y-clusters of each x-cluster. A tile reduces over
        the union of the kept y-clusters of the x-clusters it meets; consecutive y-clusters
        fuse into one run, and so do two runs less than ``gap`` columns apart. Everything is
        vectorised torch on the device of ``x_off`` (no Python loop over clusters or tiles).
        """
        bx, _, default_gap = blocks()
        bx = bx if block_x is None else block_x
        gap = default_gap if gap is None else gap
        dev = x_off.device
        y_off = y_off.to(dev)
        indptr, indices = indptr.to(dev).long(), indices.to(dev).long()
        n = int(x_off[-1])
        kx, ky = len(x_off) - 1, len(y_off) - 1
        n_tiles = (n + bx - 1) // bx
        nonempty = (x_off[1:] - x_off[:-1]) > 0
        first = torch.div(x_off[:-1], bx, rounding_mode="floor")  # first tile of each cluster
        last = torch.div(x_off[1:] - 1, bx, rounding_mode="floor")
        span = torch.where(nonempty, last - first + 1, torch.zeros_like(first))  # tiles it meets
        # Each kept (cluster I, cluster J) becomes (tile, J) for every tile that I meets.
        row_of = torch.repeat_interleave(torch.arange(kx, device=dev), indptr[1:] - indptr[:-1])
        reps = span[row_of]
        entry = torch.repeat_interleave(torch.arange(len(indices), device=dev), reps)
        rank = torch.arange(len(entry), device=dev) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
        keys = torch.unique((first[row_of[entry]] + rank) * ky + indices[entry])  # by tile, then column
        tile, col = torch.div(keys, ky, rounding_mode="floor"), keys % ky
        y0, y1 = y_off[col], y_off[col + 1]
        # A new run starts at a new tile or after a gap of more than ``gap`` columns.
        start = torch.ones_like(keys, dtype=torch.bool)
        if len(keys) > 1:
            start[1:] = (tile[1:] != tile[:-1]) | (y0[1:] - y1[:-1] > gap)
        first_k = torch.nonzero(start)[:, 0]
        last_k = torch.cat([first_k[1:], first_k.new_tensor([len(keys)])]) - 1
        run_tile, y0, y1 = tile[first_k], y0[first_k], y1[last_k]
        ptr = torch.zeros(n_tiles + 1, dtype=torch.long, device=dev)
        ptr[1:] = torch.cumsum(torch.bincount(run_tile, minlength=n_tiles), 0)
        rows = torch.clamp(n - run_tile * bx, max=bx)
        pairs = int((rows * (y1 - y0)).sum()) if len(run_tile) else 0
        return Runs(ptr, y0.contiguous(), y1.contiguous(), pairs, bx)


def lse_runs(xs: torch.Tensor, ys: torch.Tensor, h: torch.Tensor, eps: float, runs: Runs,
             v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(lse (N,), mean (N, E) or None) over the runs, for xs (N, D), ys (M, D), h (M,), v (M, E),
    all on one device and in one dtype (float32 or float64). The Triton kernel above."""
    n, d = xs.shape
    dt, dev = xs.dtype, xs.device
    xs, ys, h = xs.contiguous(), ys.contiguous(), h.to(dt).contiguous()
    out = torch.empty(n, dtype=dt, device=dev)
    want = v is not None
    e = v.shape[1] if want else 1
    vv = v.to(dt).contiguous() if want else torch.zeros(1, 1, dtype=dt, device=dev)
    mean = torch.empty(n, e, dtype=dt, device=dev) if want else torch.zeros(1, 1, dtype=dt, device=dev)
    ieps = torch.tensor([0.5 / eps], dtype=dt, device=dev)
    n_tiles = len(runs.ptr) - 1
    if n_tiles:
        _kernel()[(n_tiles,)](xs, ys, h, vv, ieps, out, mean, runs.ptr, runs.y0, runs.y1, n,
                              D=d, E=e, BLOCK_E=max(1, 1 << (e - 1).bit_length()), BLOCK_X=runs.block_x,
                              BLOCK_Y=blocks()[1], WANT_MEAN=want)
    return out, (mean if want else None)


class TritonKernel:
    """All-pairs reductions of x (N, D) against y (M, D) with the Triton kernel (online mode)."""

    mode = "online"

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self._runs = Runs.all_pairs(len(x), len(y), x.device)

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        return lse_runs(self.x, self.y, h, eps, self._runs)[0]

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return lse_runs(self.x, self.y, h, eps, self._runs, v)


class TritonBackend:
    """Fused Triton reductions: all pairs here; block-sparse in multiscale mode
    (:class:`.blocksparse.BlockSparseKernel` with ``engine="triton"``)."""

    name = "triton"

    def kernels(self, x: torch.Tensor, y: torch.Tensor, *, self_terms: bool, mode: str = "auto") -> KernelSet:
        if mode not in ("auto", "online", "dense"):
            raise ValueError("the triton backend reduces online (or block-sparse in multiscale mode); "
                             f"got mode={mode!r}")
        return KernelSet(TritonKernel(x, y), TritonKernel(y, x),
                         TritonKernel(x, x) if self_terms else None,
                         TritonKernel(y, y) if self_terms else None, "online")


def verdict(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[bool, str]:
    """(usable, reason): whether the Triton kernels run *and agree with PyTorch* on ``device``.

    The first call per (device, dtype, interpreter mode) runs a small self-check (300 x 200
    points, lse and lse_mean against :class:`.pytorch.OnlineKernel`); the verdict is then kept
    for the process. ``SHAPEOT_DISABLE_TRITON=1`` disables the backend. On the CPU, Triton runs
    only in its interpreter (``TRITON_INTERPRET=1``), which is meant for tests.
    """
    device = torch.device(device)
    key = (str(device), dtype, interpreting(), os.environ.get("SHAPEOT_DISABLE_TRITON", ""))
    with _lock:
        if key in _verdicts:
            return _verdicts[key]
    if os.environ.get("SHAPEOT_DISABLE_TRITON", "") not in ("", "0"):
        out = (False, "disabled by SHAPEOT_DISABLE_TRITON")
    else:
        out = _check(device, dtype)
    with _lock:
        _verdicts[key] = out
    return out


def reset() -> None:
    """Forget the verdicts (tests)."""
    with _lock:
        _verdicts.clear()


def _check(device: torch.device, dtype: torch.dtype) -> tuple[bool, str]:
    try:
        import triton  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
        return False, (f"triton is not installed or does not import ({type(exc).__name__}: {exc}); "
                       "pip install 'shapeot[gpu]'")
    if device.type == "cpu" and not interpreting():
        return False, "Triton kernels run on CUDA; on the CPU only under TRITON_INTERPRET=1 (tests)"
    if device.type not in ("cpu", "cuda"):
        return False, f"Triton does not run on {device.type}"
    try:
        from .pytorch import OnlineKernel

        gen = torch.Generator().manual_seed(0)
        x = torch.rand(300, 3, generator=gen, dtype=torch.float64).to(device, dtype)
        y = torch.rand(200, 3, generator=gen, dtype=torch.float64).to(device, dtype)
        h = torch.randn(200, generator=gen, dtype=torch.float64).to(device, dtype)
        ref_lse, ref_mean = OnlineKernel(x, y).lse_mean(0.01, h, y)
        lse, mean = TritonKernel(x, y).lse_mean(0.01, h, y)
        err = max(float((lse - ref_lse).abs().max()), float((mean - ref_mean).abs().max()))
    except Exception as exc:  # noqa: BLE001 - compiler or driver failures: not usable
        return False, f"Triton self-check failed on {device} ({type(exc).__name__}: {str(exc)[:300]})"
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    if not err < tol:
        return False, f"Triton disagrees with PyTorch on {device} in {dtype}: max error {err:.3g}"
    return True, "self-check passed"
