"""Validation of the engine's inputs: clear ``ValueError``s that name the argument and the fix."""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def as_points(name: str, x) -> torch.Tensor:
    """Return ``x`` as a floating (N, D) tensor, or raise ``ValueError`` naming ``name``.

    float64 stays float64 (numpy float64 arrays and nested lists of Python floats included);
    every other dtype (float16, float32, ints) becomes float32.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument named
            raise ValueError(f"{name} must be an (N, D) array of coordinates; got {type(x).__name__}") from exc
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if x.dim() == 1:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (N, D) points: use {name}[:, None] for 1D data")
    if x.dim() != 2:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected a 2D (N, D) tensor of point coordinates")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 points); OT needs at least one point on each side")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has 0 coordinates per point; expected (N, D) with D >= 1")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{name} has {bad} point(s) with NaN or infinite coordinates; remove or fix them first")
    return x


def as_weights(name: str, w, n: int, like: torch.Tensor) -> torch.Tensor:
    """Return weights of shape (n,) on ``like``'s device and dtype (uniform 1/n when None)."""
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    if not isinstance(w, torch.Tensor):
        w = torch.as_tensor(w)
    w = w.to(device=like.device, dtype=like.dtype)  # weights follow the points' precision
    if w.dim() == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{name} has shape {tuple(w.shape)}; expected ({n},), one weight per point")
    wd = w.detach()
    if not bool(torch.isfinite(wd).all()):
        raise ValueError(f"{name} contains NaN or infinite weights; weights must be finite and >= 0")
    if bool((wd < 0).any()):
        raise ValueError(f"{name} has {int((wd < 0).sum())} negative weight(s); weights must be >= 0")
    if float(wd.sum()) <= 0:
        raise ValueError(f"{name} sums to 0; at least one weight must be positive")
    return w


def check_masses(a: torch.Tensor, b: torch.Tensor, balanced: bool) -> None:
    """Balanced OT needs both measures to be probability measures."""
    if not balanced:
        return
    ma, mb = float(a.detach().sum()), float(b.detach().sum())
    tol = 1e-4 if a.dtype == torch.float32 else 1e-8
    if abs(ma - mb) > tol * max(ma, mb):
        raise ValueError(
            f"a sums to {ma:.6g} and b to {mb:.6g}: balanced OT (reach=None) needs equal total masses; "
            "normalise them (a / a.sum(), b / b.sum()) or pass reach=... for unbalanced OT"
        )
    if abs(ma - 1.0) > tol:
        raise ValueError(
            f"a and b sum to {ma:.6g}; balanced OT (reach=None) needs weights that sum to 1: "
            "normalise them (a / a.sum(), b / b.sum()) or pass reach=... for unbalanced OT"
        )


def check_positive(name: str, value, *, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number; got {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive, finite length in the units of the points; got {value!r}")
    return v


def check_scaling(scaling) -> float:
    try:
        s = float(scaling)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scaling must be a number in (0, 1); got {scaling!r}") from exc
    if not 0.0 < s < 1.0:
        raise ValueError(f"scaling must be in (0, 1) (0.5: fast, 0.9: accurate); got {scaling!r}")
    return s


def check_int(name: str, value, *, minimum: int) -> int:
    """An integer >= ``minimum`` (bools and floats with a fraction are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_nonnegative(name: str, value, *, allow_none: bool) -> float | None:
    """A finite number >= 0 (or None when allowed)."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required: a finite number >= 0")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}") from exc
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return v


def check_choice(name: str, value, choices: tuple) -> str:
    """One of ``choices`` (strings), or a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value
