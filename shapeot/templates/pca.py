r"""Principal modes of variation of corresponded shapes (point distribution model).

With every subject s in the template's vertex indexing, X_s (N, 3) (mm), subject weights w_s
(sum 1) and the template's vertex areas alpha_i (sum 1) as the metric on displacement fields,

.. math::

    \bar X = \sum_s w_s X_s,\qquad
    C = \frac{1}{1 - \sum_s w_s^2} \sum_s w_s (X_s - \bar X) \otimes (X_s - \bar X),
    \qquad \langle U, V \rangle_\alpha = \sum_i \alpha_i\, U_i \cdot V_i ,

and the modes are the eigenvectors Phi_k of C for that inner product, obtained by an SVD of the
(S, 3N) matrix of rows sqrt(w_s) (X_s - X-bar) sqrt(alpha) (Cootes, Taylor, Cooper & Graham,
"Active shape models", CVIU 61(1), 1995; area weighting so that the mesh density does not bias
the modes). Each mode has unit area-weighted RMS norm, so a score of z mm moves the surface by
z mm RMS; ``variances`` are in mm^2 (with the reliability-weights correction, i.e. the usual
S - 1 denominator for equal weights).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Modes", "principal_modes"]


@dataclass(frozen=True)
class Modes:
    """Mean and principal modes of a corresponded population.

    Attributes
    ----------
    mean : (N, 3) float64 array
        Weighted mean of the corresponded positions (mm).
    components : (K, N, 3) float64 array
        Mode k as a displacement field with unit area-weighted RMS norm (dimensionless: a score
        of z mm moves the surface by z mm RMS).
    variances : (K,) float64 array
        Variance of the scores along each mode (mm^2), decreasing.
    explained_variance_ratio : (K,) float64 array
        Share of the total variance (all modes, not only the K kept).
    scores : (S, K) float64 array
        Each subject's coordinate along each mode (mm).
    total_variance : float
        Sum of all the variances (mm^2).
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    explained_variance_ratio: np.ndarray
    scores: np.ndarray
    total_variance: float

    @property
    def n_modes(self) -> int:
        return len(self.variances)

    @property
    def standard_deviations(self) -> np.ndarray:
        """(K,) sqrt(variances) (mm)."""
        return np.sqrt(self.variances)

    def shape_at(self, k: int, sd: float) -> np.ndarray:
        """(N, 3) mean + sd * sqrt(variance_k) * component_k: the shape ``sd`` standard
        deviations along mode ``k`` (0-based), in mm."""
        return self.mean + sd * float(np.sqrt(self.variances[k])) * self.components[k]

    def summary(self) -> dict:
        """Plain data for JSON: variances (mm^2), standard deviations (mm), explained ratios."""
        return {"variances_mm2": self.variances.tolist(), "standard_deviations_mm": self.standard_deviations.tolist(),
                "explained_variance_ratio": self.explained_variance_ratio.tolist(),
                "total_variance_mm2": self.total_variance, "scores_mm": self.scores.tolist()}


def principal_modes(positions: np.ndarray, weights: np.ndarray, areas: np.ndarray, n_modes: int) -> Modes:
    """Weighted, area-weighted PCA of corresponded shapes (module docstring).

    Parameters
    ----------
    positions : (S, N, 3) float array
        Subject s's position of template vertex i (mm).
    weights : (S,) float array
        Subject weights (normalised to sum 1 here).
    areas : (N,) float array
        Template vertex areas (normalised to sum 1 here): the metric on displacement fields.
    n_modes : int
        Modes kept; at most S - 1 (the number of non-trivial ones).

    Returns
    -------
    Modes
    """
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"positions must be (S, N, 3); got {x.shape}")
    s, n, _ = x.shape
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    alpha = np.asarray(areas, dtype=np.float64)
    alpha = alpha / alpha.sum()
    mean = np.tensordot(w, x, axes=1)
    centred = x - mean
    correction = 1.0 / max(1.0 - float((w ** 2).sum()), 1e-12)
    rows = (np.sqrt(w)[:, None, None] * centred * np.sqrt(alpha)[None, :, None]).reshape(s, 3 * n)
    u, sv, vt = np.linalg.svd(rows, full_matrices=False)
    variances_all = correction * sv ** 2
    k = int(min(n_modes, max(s - 1, 0), len(sv)))
    total = float(variances_all.sum())
    comps = vt[:k].reshape(k, n, 3) / np.sqrt(alpha)[None, :, None]  # unit <., .>_alpha norm
    # A deterministic sign: the largest-magnitude vertex displacement of each mode points to +.
    for j in range(k):
        flat = comps[j].reshape(-1)
        if flat[np.argmax(np.abs(flat))] < 0:
            comps[j] = -comps[j]
    scores = np.einsum("snd,knd,n->sk", centred, comps, alpha)
    ratio = variances_all[:k] / total if total > 0 else np.zeros(k)
    return Modes(mean, comps, variances_all[:k], ratio, scores, total)
