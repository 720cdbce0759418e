"""OT correspondences between two shapes: ``shapeot.match``.

Each source vertex x_i is matched to the barycentric projection of its row of the entropic plan,
T(x_i) = sum_j P_ij y_j / sum_j P_ij, and to its strongest partner argmax_j P_ij, with vertex-area
weights so that mesh density does not bias the result (DESIGN.md, "the OT engine").
"""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CSV_HEADER = ["source_index", "target_x", "target_y", "target_z", "target_index", "mass"]


@dataclass(frozen=True)
class Correspondences:
    """For each of the N source vertices: its matched target point and partner.

    Attributes
    ----------
    target_points : (N, 3) float64, units of the shapes (mm)
        Barycentric projection T(x_i) of each source vertex onto the target.
    target_index : (N,) int64
        Index of the target vertex receiving the most mass from x_i.
    mass : (N,) float64
        Mass leaving x_i (row sum of the plan): its weight for balanced OT, less where
        unbalanced OT (``reach``) discarded it as an outlier.
    displacement : (N, 3) float64, mm
        T(x_i) - x_i.
    result : shapeot.ot.OTResult
        The engine's full result (value, potentials, lazy plan).
    """

    target_points: np.ndarray
    target_index: np.ndarray
    mass: np.ndarray
    displacement: np.ndarray
    result: object

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write ``source_index, target_x, target_y, target_z, target_index, mass`` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(CSV_HEADER)
                for i, (p, j, m) in enumerate(zip(self.target_points, self.target_index, self.mass)):
                    w.writerow([i, *(f"{c:.6f}" for c in p), int(j), f"{m:.6e}"])
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def match(source, target, *, blur: float | None = None, reach: float | None = None, scaling: float = 0.8,
          backend: str = "auto", progress=None) -> Correspondences:
    """OT correspondences from ``source`` to ``target`` (two :class:`shapeot.Shape`).

    Parameters
    ----------
    source, target : Shape
        Points (N, 3), (M, 3) in the same units (mm), weighted by their ``weights`` (vertex areas).
    blur : float, optional
        Blur in the shapes' units (default 1 % of the joint diameter).
    reach : float, optional
        Reach for unbalanced OT (outliers farther than ~reach are not matched). None: balanced.
    scaling, backend :
        As in :func:`shapeot.ot.solve`.
    progress : callable(fraction, message) -> bool, optional
        Called at every Sinkhorn iteration; returning False raises :class:`shapeot.Cancelled`.
    """
    import torch

    from shapeot.ot import solve

    if source.units != target.units:
        raise ValueError(f"source is in {source.units} and target in {target.units}; convert one first")
    # torch.tensor copies: a Shape's arrays are read-only and must stay untouched.
    x, y = torch.tensor(source.points), torch.tensor(target.points)
    a, b = torch.tensor(source.weights), torch.tensor(target.weights)
    res = solve(x, y, a, b, blur=blur, reach=reach, scaling=scaling, backend=backend, progress=progress)
    tx = res.plan.barycentric_map().numpy()
    idx, _ = res.plan.top_k(1)
    return Correspondences(tx, idx[:, 0].numpy().astype(np.int64), res.plan.row_sums().numpy(),
                           tx - np.asarray(source.points), res)
