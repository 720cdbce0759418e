r"""Linear (affine) maps x -> A x + t, and their weighted least-squares fits to correspondences.

Rigid and similarity fits are weighted Procrustes problems solved in closed form by an SVD
(Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
IEEE TPAMI 13(4), 1991): with weights w_i >= 0, centroids mu_x, mu_y and the weighted cross
covariance Sigma = sum_i w_i (y_i - mu_y)(x_i - mu_x)^T / sum w = U D V^T,

.. math::  R = U S V^T,\quad S = \mathrm{diag}(1, 1, \det(U V^T)),\quad
           s = \mathrm{tr}(D S) / \sigma_x^2,\quad t = \mu_y - s R \mu_x,

which minimises sum_i w_i |y_i - (s R x_i + t)|^2 over rotations R (never a reflection) and,
for a similarity, the scale s. The affine fit is weighted linear least squares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LinearMap", "fit_linear", "LINEAR_KINDS"]

LINEAR_KINDS = ("rigid", "similarity", "affine")


@dataclass(frozen=True)
class LinearMap:
    """x -> A x + t, stored as a 4x4 homogeneous matrix acting on column vectors.

    Attributes
    ----------
    matrix : (4, 4) float64 array
        ``[[A, t], [0, 0, 0, 1]]``; units of t are those of the points (mm).
    """

    matrix: np.ndarray

    @staticmethod
    def identity() -> "LinearMap":
        return LinearMap(np.eye(4))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Move (N, 3) points (mm); returns a new (N, 3) float64 array."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The same map on an (N, 3) tensor, differentiable in x."""
        m = torch.as_tensor(self.matrix, dtype=x.dtype, device=x.device)
        return x @ m[:3, :3].T + m[:3, 3]

    def compose(self, first: "LinearMap") -> "LinearMap":
        """self o first: apply ``first``, then ``self``."""
        return LinearMap(self.matrix @ first.matrix)

    def inverse(self) -> "LinearMap":
        return LinearMap(np.linalg.inv(self.matrix))

    def jacobian_determinant(self) -> float:
        """det A: the volume ratio of the map (1 for a rigid motion)."""
        return float(np.linalg.det(self.matrix[:3, :3]))


def fit_linear(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, kind: str = "rigid") -> LinearMap:
    """The map of the given ``kind`` minimising sum_i w_i |y_i - (A x_i + t)|^2.

    Parameters
    ----------
    x, y : (N, 3) float arrays
        Paired points (mm): x_i should land on y_i.
    w : (N,) float array, optional
        Non-negative weights (OT masses, vertex areas); uniform when None.
    kind : {"rigid", "similarity", "affine"}
        Rotation + translation (Umeyama 1991 without scale), rotation + isotropic scale +
        translation (Umeyama 1991), or a general affine map (weighted least squares).

    Returns
    -------
    LinearMap
    """
    if kind not in LINEAR_KINDS:
        raise ValueError(f"kind must be one of {LINEAR_KINDS}; got {kind!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3 or w.shape != (len(x),):
        raise ValueError(f"x, y must be (N, 3) and w (N,); got {x.shape}, {y.shape}, {w.shape}")
    total = w.sum()
    if not total > 0:
        raise ValueError("the weights sum to zero: nothing to fit")
    w = w / total
    mx, my = w @ x, w @ y  # (3,) weighted centroids
    xc, yc = x - mx, y - my
    m = np.eye(4)
    if kind == "affine":
        # Normal equations of the weighted least squares: A (sum w xc xc^T) = sum w yc xc^T.
        cxx = (xc * w[:, None]).T @ xc  # (3, 3)
        cyx = (yc * w[:, None]).T @ xc  # (3, 3)
        a = np.linalg.solve(cxx.T, cyx.T).T  # cxx is symmetric; solve A cxx = cyx
    else:
        u, d, vt = np.linalg.svd((yc * w[:, None]).T @ xc)  # Sigma = U D V^T, (3, 3)
        s = np.ones(3)
        s[2] = np.sign(np.linalg.det(u @ vt)) or 1.0  # forbid reflections
        rot = u @ np.diag(s) @ vt
        scale = 1.0
        if kind == "similarity":
            var_x = float((w * (xc * xc).sum(1)).sum())
            scale = float((d * s).sum() / var_x)
        a = scale * rot
    m[:3, :3] = a
    m[:3, 3] = my - a @ mx
    return LinearMap(m)
