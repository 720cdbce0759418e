"""Test clouds: seeded, in the unit cube, like the benchmark's (sphere shell vs twisted ellipsoid)."""
from __future__ import annotations

import torch


def shells(n: int, m: int | None = None, d: int = 3, seed: int = 0, dtype=torch.float64):
    """A noisy sphere shell (n, d) and a twisted ellipsoid shell (m, d) inside the unit cube."""
    g = torch.Generator().manual_seed(seed)
    m = n if m is None else m
    u = torch.randn(n, d, generator=g, dtype=dtype)
    x = 0.3 * u / u.norm(dim=1, keepdim=True) + 0.01 * torch.randn(n, d, generator=g, dtype=dtype) + 0.5
    v = torch.randn(m, d, generator=g, dtype=dtype)
    v = v / v.norm(dim=1, keepdim=True) * torch.linspace(0.4, 0.2, d, dtype=dtype)
    t = 2.0 * v[:, -1:]
    c, s = torch.cos(t), torch.sin(t)
    y = v.clone()
    y[:, 0:1], y[:, 1:2] = c * v[:, 0:1] - s * v[:, 1:2], s * v[:, 0:1] + c * v[:, 1:2]
    return x, y + 0.5 + 0.03


def random_weights(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, generator=g, dtype=dtype) + 0.2
    return w / w.sum()
