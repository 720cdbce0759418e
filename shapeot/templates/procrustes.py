r"""Generalised Procrustes analysis with optimal-transport correspondences, and the medoid.

Generalised Procrustes analysis (Gower, "Generalized Procrustes analysis", Psychometrika 40,
1975) puts S shapes in a common frame by alternating

.. math::

    A_s \leftarrow \arg\min_{A \in \mathcal G} \sum_i m_{si}\, |A x_{si} - T_s(x_{si})|^2,
    \qquad
    \bar y_j \leftarrow \sum_s w_s\, T'_s(\bar y_j),

where :math:`\mathcal G` is the rigid or similarity group (closed form: Umeyama 1991),
:math:`T_s` the barycentric projection of the entropic OT plan between the aligned subject
:math:`A_s x_s` and the current mean :math:`\bar y` (Peyré & Cuturi 2019), :math:`T'_s` the
projection of the transposed plan, :math:`m_{si}` the plan's row masses and :math:`w_s` the
subject weights. OT supplies the correspondences that landmark-based GPA takes as given. For
similarities the mean is rescaled to the subjects' weighted mean RMS radius after each round (the
usual constraint that stops GPA from shrinking the mean to a point).

The subjects first get a robust alignment to a reference subject (OT pre-alignment from several
starting rotations, as in Shen, Feydy et al., NeurIPS 2021); the medoid, which minimises the
weighted sum of Sinkhorn divergences (Feydy et al., AISTATS 2019) to the others, is the
initial mean. Everything runs on grid clusterings of a few hundred points per subject.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from shapeot.registration.history import HistoryEntry

from .tasks import apply_matrix

__all__ = ["Cloud", "cloud", "rms_radius", "mean_spacing", "medoid_index", "generalised_procrustes"]

Cloud = tuple  # (points (K, 3) float64 mm, weights (K,) float64 summing to 1)


def cloud(shape, n_points: int) -> Cloud:
    """The shape reduced to about ``n_points`` weighted grid-cluster centroids (same mass and
    centroid): ((K, 3) points in mm, (K,) weights)."""
    from shapeot.core.pooling import clusters

    pts, w = np.asarray(shape.points, dtype=np.float64), np.asarray(shape.weights, dtype=np.float64)
    c = clusters(pts, w, n_points)
    return c.centroids(pts), c.cluster_weights / c.cluster_weights.sum()


def rms_radius(points: np.ndarray, weights: np.ndarray) -> float:
    """sqrt(sum_i w_i |x_i - c|^2) with c the weighted centroid (mm): the size of a shape."""
    p, w = np.asarray(points, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    c = w @ p / w.sum()
    return float(np.sqrt(w @ ((p - c) ** 2).sum(1) / w.sum()))


def medoid_index(distances: np.ndarray, weights: np.ndarray, eligible: Sequence[int]) -> int:
    """argmin over ``eligible`` s of sum_t w_t D[s, t] for a symmetric (S, S) distance matrix."""
    d = np.asarray(distances, dtype=np.float64)
    cost = (d + d.T) @ np.asarray(weights, dtype=np.float64)
    eligible = list(eligible)
    return int(eligible[int(np.argmin(cost[eligible]))])


def mean_spacing(points: np.ndarray) -> float:
    """Mean distance of a point to its nearest neighbour (mm): the sampling length of a shape."""
    from scipy.spatial import cKDTree

    return float(cKDTree(points).query(points, k=2)[0][:, 1].mean()) if len(points) > 1 else 0.0


def _polar_rotation(linear: np.ndarray) -> np.ndarray:
    """The rotation nearest to a 3x3 matrix (its polar factor; never a reflection)."""
    u, _, vt = np.linalg.svd(linear)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _scaling(factor: float, centre: np.ndarray) -> np.ndarray:
    """4x4 isotropic scaling by ``factor`` about ``centre`` (mm)."""
    m = np.eye(4)
    m[:3, :3] *= factor
    m[:3, 3] = centre - factor * centre
    return m


def generalised_procrustes(clouds: Sequence[Cloud], weights: np.ndarray, matrices: np.ndarray, reference: int, *,
                           kind: str, blur: float, iterations: int, tol: float, history: list,
                           sizes: np.ndarray | None = None,
                           progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Refine the alignments of S weighted clouds by generalised Procrustes rounds (module docstring).

    Parameters
    ----------
    clouds : list of (points (K_s, 3), weights (K_s,))
        The subjects in their own coordinates (mm).
    weights : (S,) float array
        Subject weights, summing to 1.
    matrices : (S, 4, 4) float array
        Initial alignments subject -> common frame; only their rotation and translation are
        used (the scale of a similarity comes from ``sizes``).
    reference : int
        The subject whose aligned cloud is the initial mean (the medoid).
    kind : {"rigid", "similarity"}
        For "similarity", every subject is scaled about its centroid to the weighted mean of
        ``sizes`` (the classical centroid-size normalisation of GPA) and the rounds fit
        rotations and translations: a least-squares scale fitted to blurred OT targets would
        be biased low by the blur.
    blur : float
        OT blur (mm); raised to half the clouds' sampling length if below it.
    iterations : int
        Most rounds; a round that moves no aligned point more than ``tol`` (mm) is the last.
    history : list
        Receives one dict per round: stage "procrustes", round, change_mm, loss (weighted mean
        OT cost between the aligned subjects and the mean, mm^2).
    sizes : (S,) float array, optional
        The subjects' sizes (RMS radius of their full meshes, mm); needed for "similarity".
    progress : callable(fraction, message), optional

    Returns
    -------
    (matrices (S, 4, 4), mean (K, 3))
        Subject -> common frame maps, and the Procrustes mean (in the reference's clustering).
    """
    import torch

    from shapeot.deform import fit_linear
    from shapeot.ot import solve

    w = np.asarray(weights, dtype=np.float64)
    n = len(clouds)
    pre = np.tile(np.eye(4), (n, 1, 1))  # subject -> scaled subject (identity for rigid)
    if kind == "similarity":
        if sizes is None:
            raise ValueError("similarity Procrustes needs the subjects' sizes")
        target = float(w @ np.asarray(sizes, dtype=np.float64))
        for s, (p, a) in enumerate(clouds):
            pre[s] = _scaling(target / float(sizes[s]), np.asarray(a) @ p / np.sum(a))
    mats = np.array(matrices, dtype=np.float64)
    for s in range(n):  # rigid part of the initial maps, after the size normalisation
        rot = _polar_rotation(mats[s, :3, :3])
        centre = clouds[s][1] @ clouds[s][0] / np.sum(clouds[s][1])
        rigid = np.eye(4)
        rigid[:3, :3] = rot
        rigid[:3, 3] = apply_matrix(mats[s], centre[None])[0] - rot @ centre
        mats[s] = rigid @ pre[s]  # pre fixes the centre, so the centre still lands where it did
    ref_pts, ref_w = clouds[reference]
    mean = apply_matrix(mats[reference], ref_pts)
    mean_w = torch.as_tensor(ref_w, dtype=torch.float64)
    blur = max(blur, 0.5 * max(mean_spacing(p) for p, _ in clouds))
    for r in range(iterations):
        new = np.empty_like(mats)
        images = np.zeros_like(mean)
        change, loss = 0.0, 0.0
        y = torch.as_tensor(mean, dtype=torch.float64)
        for s, (pts, a) in enumerate(clouds):
            x = apply_matrix(mats[s], pts)
            # a Procrustes round, a step of a fixed point, not a final plan: the schedule alone
            res = solve(torch.as_tensor(x), y, torch.as_tensor(a, dtype=torch.float64), mean_w, blur=blur,
                        scaling=0.5, debias=False, tol=None)
            targets = res.plan.barycentric_map().numpy()
            masses = res.plan.row_sums().numpy()
            scaled = apply_matrix(pre[s], pts)
            new[s] = fit_linear(scaled, targets, masses, "rigid").matrix @ pre[s]
            # Images of the mean's points on the subject, carried along by the new alignment.
            back = res.plan.T.barycentric_map().numpy()
            images += w[s] * apply_matrix(new[s] @ np.linalg.inv(mats[s]), back)
            change = max(change, float(np.abs(apply_matrix(new[s], pts) - x).max()))
            loss += w[s] * float(res.value)
            if progress is not None:
                progress((r + (s + 1) / n) / max(1, iterations), f"Procrustes round {r + 1}: {s + 1}/{n} subjects")
        mats = new
        mean = images
        history.append(HistoryEntry("procrustes", r, loss, blur=blur, extra={"change_mm": change}))
        if change < tol:
            break
    return mats, mean
