"""Landmark and per-vertex errors (mm)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["target_registration_errors", "ErrorSummary", "error_summary"]


def target_registration_errors(moved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(L,) target registration error |phi(l_i) - l'_i| of each landmark (mm).

    Parameters
    ----------
    moved : (L, 3) float array
        Source landmarks carried through the deformation (``deformation.apply``).
    target : (L, 3) float array
        The corresponding target landmarks, in the same order.
    """
    moved, target = np.asarray(moved, float), np.asarray(target, float)
    if moved.shape != target.shape or moved.ndim != 2 or moved.shape[1] != 3:
        raise ValueError(f"landmarks must be two (L, 3) arrays of equal length; got {moved.shape} and {target.shape}")
    return np.linalg.norm(moved - target, axis=1)


class ErrorSummary(NamedTuple):
    """Mean, median, 95th percentile and maximum of a set of distances (mm)."""

    mean: float
    median: float
    p95: float
    max: float


def error_summary(errors: np.ndarray) -> ErrorSummary:
    """Summary statistics of (N,) distances, e.g. per-vertex errors to a ground truth or TREs."""
    e = np.asarray(errors, dtype=float)
    return ErrorSummary(float(e.mean()), float(np.median(e)), float(np.percentile(e, 95)), float(e.max()))
