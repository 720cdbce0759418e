"""The ``torch`` backend: pure PyTorch, on any device PyTorch supports (CPU, CUDA, MPS).

Two modes, chosen by :func:`dense_fits`:

* ``dense``: the cost matrices are computed once and kept (N*M memory); each reduction is a
  handful of in-place passes over a shared scratch buffer. Fastest for small clouds.
* ``online``: nothing of size N*M is stored. Cost blocks are recomputed by matmul,
  |x-y|^2/2 = |x|^2/2 + |y|^2/2 - <x, y>, block by block, and reduced with a running
  (streaming) log-sum-exp, so memory is O((N + M) D + block^2).
"""
from __future__ import annotations

import os

import torch

from .base import KernelSet

# Elements of one online cost block: 2^22 float32 = 16 MiB, small enough for L3-ish reuse.
_BLOCK_ELEMENTS = int(os.environ.get("SHAPEOT_BLOCK_ELEMENTS", 1 << 22))


def _dense_budget_bytes(device: torch.device) -> int:
    env = os.environ.get("SHAPEOT_DENSE_BYTES")
    if env:
        return int(float(env))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return 4 << 30


def dense_fits(n: int, m: int, dtype: torch.dtype, device: torch.device, self_terms: bool = True) -> bool:
    """True when the cached cost matrices (x->y, y->x, and x->x, y->y when debiasing) and one
    scratch buffer fit in the dense memory budget (env ``SHAPEOT_DENSE_BYTES``; 4 GiB on CPU,
    half the free memory on CUDA)."""
    item = torch.finfo(dtype).bits // 8
    elements = 2 * n * m + (n * n + m * m if self_terms else 0) + max(n, m) ** 2
    return elements * item <= _dense_budget_bytes(device)


def sq_dist_half(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, M) matrix of |x_i - y_j|^2 / 2, clamped at 0 against round-off."""
    c = torch.addmm((y * y).sum(1)[None, :], x, y.T, alpha=-2.0)  # (N, M)
    c.add_((x * x).sum(1)[:, None]).mul_(0.5).clamp_(min=0)
    return c


class _Scratch:
    """One reusable (rows, cols) buffer: avoids a fresh N*M allocation at every iteration."""

    def __init__(self):
        self._buf: torch.Tensor | None = None

    def get(self, like: torch.Tensor) -> torch.Tensor:
        need = like.numel()
        if self._buf is None or self._buf.numel() < need or self._buf.dtype != like.dtype:
            self._buf = torch.empty(need, dtype=like.dtype, device=like.device)
        return self._buf[:need].view(like.shape)


class DenseKernel:
    """Reductions over a cached cost matrix C (N, M)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, cost: torch.Tensor, scratch: _Scratch):
        self.x, self.y, self.cost, self._scratch = x, y, cost, scratch

    def _weights(self, eps: float, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised soft-max weights exp(h_j - C_ij/eps - m_i) in the scratch buffer, and m."""
        buf = self._scratch.get(self.cost)
        torch.add(h[None, :], self.cost, alpha=-1.0 / eps, out=buf)  # (N, M)
        m = buf.amax(dim=1, keepdim=True)  # (N, 1)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # rows whose h is all -inf
        buf.sub_(m).exp_()
        return buf, m[:, 0]

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        w, m = self._weights(eps, h)
        return m + w.sum(dim=1).log()

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, m = self._weights(eps, h)
        s = w.sum(dim=1)  # (N,)
        mean = (w @ v) / s[:, None]  # (N, M) @ (M, E) = (N, E)
        return m + s.log(), mean


class OnlineKernel:
    """Reductions with cost blocks recomputed on the fly: O((N + M) D + block) memory."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self._x2 = (x * x).sum(1) / 2  # (N,)
        self._y2 = (y * y).sum(1) / 2  # (M,)

    def _blocks(self):
        m = self.y.shape[0]
        cols = m if m * 64 <= _BLOCK_ELEMENTS else max(1024, _BLOCK_ELEMENTS // 1024)
        rows = max(1, _BLOCK_ELEMENTS // min(cols, m))
        return rows, cols

    def _reduce(self, eps: float, h: torch.Tensor, v: torch.Tensor | None):
        n, m = self.x.shape[0], self.y.shape[0]
        rows, cols = self._blocks()
        hy = h - self._y2 / eps  # (M,)
        out_lse = torch.empty(n, dtype=self.x.dtype, device=self.x.device)
        out_mean = None if v is None else torch.empty(n, v.shape[1], dtype=v.dtype, device=v.device)
        for i0 in range(0, n, rows):
            xi = self.x[i0:i0 + rows]
            run_m = run_s = run_v = None
            for j0 in range(0, m, cols):
                # S_ij = h_j - |y_j|^2/(2 eps) + <x_i, y_j>/eps ; the -|x_i|^2/(2 eps) term is added last.
                s = torch.addmm(hy[None, j0:j0 + cols], xi, self.y[j0:j0 + cols].T, alpha=1.0 / eps)  # (B, Bc)
                bm = s.amax(dim=1)
                bm = torch.where(torch.isfinite(bm), bm, torch.zeros_like(bm))
                s.sub_(bm[:, None]).exp_()
                bs = s.sum(dim=1)
                bv = None if v is None else s @ v[j0:j0 + cols]  # (B, Bc) @ (Bc, E)
                if run_m is None:
                    run_m, run_s, run_v = bm, bs, bv
                else:
                    new_m = torch.maximum(run_m, bm)
                    r_old, r_new = (run_m - new_m).exp(), (bm - new_m).exp()
                    run_s = run_s * r_old + bs * r_new
                    if v is not None:
                        run_v = run_v * r_old[:, None] + bv * r_new[:, None]
                    run_m = new_m
            out_lse[i0:i0 + rows] = run_m + run_s.log() - self._x2[i0:i0 + rows] / eps
            if v is not None:
                out_mean[i0:i0 + rows] = run_v / run_s[:, None]
        return out_lse, out_mean

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        return self._reduce(eps, h, None)[0]

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._reduce(eps, h, v)


class TorchBackend:
    """Pure PyTorch reductions; always available."""

    name = "torch"

    def kernels(self, x: torch.Tensor, y: torch.Tensor, *, self_terms: bool, mode: str = "auto") -> KernelSet:
        """Build the kernels for clouds x (N, D), y (M, D) (detached, centred, one dtype/device).

        mode: "dense", "online" or "auto" (dense when :func:`dense_fits`).
        """
        if mode == "auto":
            mode = "dense" if dense_fits(len(x), len(y), x.dtype, x.device, self_terms) else "online"
        if mode == "online":
            return KernelSet(OnlineKernel(x, y), OnlineKernel(y, x),
                             OnlineKernel(x, x) if self_terms else None,
                             OnlineKernel(y, y) if self_terms else None, "online")
        if mode != "dense":
            raise ValueError(f"mode must be 'auto', 'dense' or 'online'; got {mode!r}")
        scratch = _Scratch()
        c_xy = sq_dist_half(x, y)  # (N, M)
        xy = DenseKernel(x, y, c_xy, scratch)
        yx = DenseKernel(y, x, c_xy.T.contiguous(), scratch)  # (M, N): row reductions stay contiguous
        xx = DenseKernel(x, x, sq_dist_half(x, x), scratch) if self_terms else None
        yy = DenseKernel(y, y, sq_dist_half(y, y), scratch) if self_terms else None
        return KernelSet(xy, yx, xx, yy, "dense")
