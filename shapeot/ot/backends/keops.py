"""The ``keops`` backend: pykeops LazyTensor reductions, O(N + M) memory, compiled at first use.

KeOps JIT-compiles each formula (g++ on the CPU, nvrtc on CUDA) and that compiler can crash the
whole process (a segfault on an H100 with CUDA 13.0 and pykeops 2.3; keops issues #398, #330).
So this module is only used after :mod:`.selftest` has run the same reductions in a
subprocess and they passed; see :func:`shapeot.ot.backends.available_backends`.

References: Charlier, Feydy, Glaunès, Collin, Durif, "Kernel operations on the GPU, with
autodiff, without memory overflows", JMLR 22(74), 2021.
"""
from __future__ import annotations

import torch

from .base import KernelSet


class KeOpsKernel:
    """lse_i = log sum_j exp(h_j - |x_i - y_j|^2 / (2 eps)) as a KeOps ``logsumexp`` reduction."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        from pykeops.torch import LazyTensor

        self.x, self.y = x, y
        self._LazyTensor = LazyTensor
        self._x_i = LazyTensor(x[:, None, :])  # (N, 1, D)
        self._y_j = LazyTensor(y[None, :, :])  # (1, M, D)
        self._half_d2 = ((self._x_i - self._y_j) ** 2).sum(-1) / 2  # (N, M) symbolic

    def _formula(self, eps: float, h: torch.Tensor):
        # eps travels as a parameter tensor, not a Python float, so one compiled kernel serves
        # every eps of the annealing schedule.
        ieps = self._LazyTensor(torch.tensor([1.0 / eps], dtype=self.x.dtype, device=self.x.device))
        h_j = self._LazyTensor(h.contiguous()[None, :, None])  # (1, M, 1)
        return h_j - self._half_d2 * ieps  # (N, M) symbolic

    def lse(self, eps: float, h: torch.Tensor) -> torch.Tensor:
        return self._formula(eps, h).logsumexp(dim=1)[:, 0]

    def lse_mean(self, eps: float, h: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._formula(eps, h)
        mean = f.sumsoftmaxweight(self._LazyTensor(v.contiguous()[None, :, :]), dim=1)  # (N, E)
        return f.logsumexp(dim=1)[:, 0], mean


class KeOpsBackend:
    """Online reductions with pykeops; use only once the self-test has passed."""

    name = "keops"

    def kernels(self, x: torch.Tensor, y: torch.Tensor, *, self_terms: bool, mode: str = "auto") -> KernelSet:
        if mode not in ("auto", "online"):
            raise ValueError(f"the keops backend is online only; got mode={mode!r}")
        return KernelSet(KeOpsKernel(x, y), KeOpsKernel(y, x),
                         KeOpsKernel(x, x) if self_terms else None,
                         KeOpsKernel(y, y) if self_terms else None, "online")
