"""OT correspondences between two shapes: ``shapeot.match``.

Each source vertex x_i is matched to the barycentric projection of its row of the entropic plan,
T(x_i) = sum_j P_ij y_j / sum_j P_ij, and to its strongest partner argmax_j P_ij, with vertex-area
weights so that mesh density does not bias the result (DESIGN.md, "the OT engine").
"""
from __future__ import annotations

import os
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

    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``source_index, target_x, target_y, target_z, target_index, mass``.

        Numbers are written in full (the shortest text that reads back as the same float64),
        so 1e-6 mm stays 1e-06, not 0.000000. The file is staged and committed atomically and
        exclusively (:mod:`shapeot.core.outputs`), with the usual permissions (umask).

        Raises
        ------
        ValueError
            If ``path`` does not end in ``.csv``.
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        """
        from shapeot.core.outputs import single_output, write_csv_rows

        path = Path(path)
        check_csv_path(path)
        with single_output(path, overwrite=overwrite) as tmp:
            write_csv_rows(tmp, CSV_HEADER, self.rows())
        return path

    def rows(self):
        """The CSV rows (without the header): ``[i, x, y, z, target_index, mass]`` per source vertex."""
        return ([i, *p, int(j), m] for i, (p, j, m) in enumerate(zip(self.target_points, self.target_index, self.mass)))


def check_csv_path(path: str | os.PathLike) -> None:
    """Raise ValueError unless ``path`` ends in ``.csv`` (checked before any work)."""
    if not str(path).lower().endswith(".csv"):
        raise ValueError(f"{path}: correspondences are written as CSV; give a file name ending in .csv")


def match(source, target, *, blur: float | None = None, reach: float | None = None, scaling: float = 0.8,
          backend: str = "auto", progress=None) -> Correspondences:
    """OT correspondences from ``source`` to ``target`` (two :class:`shapeot.Shape`).

    Parameters
    ----------
    source, target : Shape or path
        Points (N, 3), (M, 3) in the same units (mm), weighted by their ``weights`` (vertex areas).
        A path is read with :func:`shapeot.load`. Shapes in different units are refused.
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
    from shapeot.shapes import as_shape

    source, target = as_shape(source, "source"), as_shape(target, "target")
    if source.units != target.units:
        raise ValueError(f"source is in {source.units} and target in {target.units}; convert one first "
                         f"(shape.to_units('{target.units}') in Python, --to-units {target.units} on the command line)")
    # torch.tensor copies: a Shape's arrays are read-only and must stay untouched.
    x, y = torch.tensor(source.points), torch.tensor(target.points)
    a, b = torch.tensor(source.weights), torch.tensor(target.weights)
    res = solve(x, y, a, b, blur=blur, reach=reach, scaling=scaling, backend=backend, progress=progress)
    tx = res.plan.barycentric_map().numpy()
    idx, _ = res.plan.top_k(1)
    return Correspondences(tx, idx[:, 0].numpy().astype(np.int64), res.plan.row_sums().numpy(),
                           tx - np.asarray(source.points), res)
