"""The per-subject work of a template: the only functions that run on Dask workers.

Each takes plain data (Shapes, arrays, configurations), returns plain data, and is a module-level
function so that Dask pickles it by reference. The same functions run in-process, so the
results do not depend on the executor.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["apply_matrix", "aligned", "rough_alignment", "medoid_row", "register_subject"]


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points moved by a 4x4 homogeneous matrix acting on column vectors (mm)."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def aligned(subject, matrix: np.ndarray):
    """The subject moved into the template frame by ``matrix`` (4x4): same faces and name,
    vertex areas recomputed, point data dropped."""
    return subject.replace(points=apply_matrix(matrix, subject.points), weights=None, point_data={})


def _size(shape) -> tuple[float, np.ndarray]:
    p, w = np.asarray(shape.points), np.asarray(shape.weights)
    c = w @ p
    return float(np.sqrt(w @ ((p - c) ** 2).sum(1))), c


def rough_alignment(subject, reference, kind: str, starts: int, progress=None) -> np.ndarray:
    """(4, 4) a map taking ``subject`` onto ``reference``: a rigid motion after scaling the subject
    about its centroid to the reference's size (RMS radius), for either ``kind``.

    The robust OT pre-alignment of :func:`shapeot.register` (unbalanced OT + weighted
    Procrustes, Umeyama 1991, from ``starts`` rotations of the cube) on small clusterings of the
    size-normalised subject: a size mismatch would mislead the choice of the start. The
    generalised Procrustes rounds keep its rotation and translation and refine them.
    """
    from shapeot.registration import PrealignConfig, RegistrationConfig, register

    size_s, centre = _size(subject)
    size_r, _ = _size(reference)
    pre = np.eye(4)
    pre[:3, :3] *= size_r / size_s
    pre[:3, 3] = centre - pre[:3, :3] @ centre
    scaled = subject.replace(points=apply_matrix(pre, subject.points), weights=None, point_data={})
    cfg = RegistrationConfig.from_preset("rigid", compute_metrics=False, prealign=PrealignConfig(
        model="rigid", starts=starts, points=300, refine_points=600, iterations=15))
    return np.asarray(register(scaled, reference, cfg, progress=progress).prealign) @ pre


def medoid_row(i: int, clouds: list, blur: float, progress=None) -> np.ndarray:
    """Debiased Sinkhorn divergences S_eps (mm^2) from cloud ``i`` to the clouds j > i.

    ``clouds`` is a list of (points (K, 3), weights (K,)) pairs, already aligned; returns an
    array of length len(clouds) with zeros up to and including i.
    """
    import torch

    from shapeot.ot import solve

    out = np.zeros(len(clouds))
    x, a = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in clouds[i])
    for j in range(i + 1, len(clouds)):
        y, b = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in clouds[j])
        # Only the value is used (to rank the subjects), and the debiased value converges long
        # before the plan's marginals do: the schedule alone (tol=None).
        out[j] = float(solve(x, y, a, b, blur=blur, scaling=0.5, tol=None).value)
        if progress is not None:
            progress((j - i) / max(1, len(clouds) - i - 1), "medoid")
    return out


def register_subject(template, subject, matrix: np.ndarray, config, progress=None):
    """Register the template onto the subject moved into the template frame by ``matrix``.

    Returns the :class:`shapeot.Registration` without its ``source`` and ``target`` (the caller
    holds both) and without the engine's lazy plan, so that little travels back from a worker.
    """
    from shapeot.registration import register

    reg = register(template, aligned(subject, matrix), config, progress=progress)
    corr = reg.correspondences
    if dataclasses.is_dataclass(corr) and getattr(corr, "result", None) is not None:
        corr = dataclasses.replace(corr, result=None)
    return dataclasses.replace(reg, source=None, target=None, correspondences=corr)
