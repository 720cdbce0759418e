"""Geometry of the problem: diameter and the epsilon-scaling (annealing) schedule."""
from __future__ import annotations

import math

import torch


def diameter(x: torch.Tensor, y: torch.Tensor) -> float:
    """Diagonal length of the joint bounding box of x (N, D) and y (M, D), in their units."""
    lo = torch.minimum(x.min(dim=0).values, y.min(dim=0).values)
    hi = torch.maximum(x.max(dim=0).values, y.max(dim=0).values)
    return float((hi - lo).norm())


def schedule_length(diam: float, blur: float, scaling: float) -> int:
    """len(blur_schedule(diam, blur, scaling)), without building it (scaling near 1 makes it huge)."""
    diam = max(diam, blur)
    if diam <= blur:
        return 2
    return math.ceil(math.log(blur / diam) / math.log(scaling)) + 3


def blur_schedule(diam: float, blur: float, scaling: float) -> list[float]:
    r"""Blurs sigma_k = max(diam * scaling^k, blur), from the diameter down to ``blur``.

    eps_k = sigma_k^2. Starting at the diameter, where the entropic problem is nearly trivial,
    and dividing the blur by 1/scaling at each step gives Sinkhorn a warm start at every scale
    (Kosowsky & Yuille 1994; Schmitzer 2019, "Stabilized sparse scaling algorithms";
    Feydy 2020, thesis, sec. 3.3.3). The first scale is repeated once, to initialise.
    ``scaling`` trades speed (0.5) for accuracy (0.9 and above).
    """
    diam = max(diam, blur)
    n_steps = max(0, math.ceil(math.log(blur / diam) / math.log(scaling))) if diam > blur else 0
    sigmas = [diam] + [max(diam * scaling**k, blur) for k in range(0, n_steps + 1)]
    if sigmas[-1] != blur:
        sigmas.append(blur)
    return sigmas
