"""The :class:`Registration` returned by :func:`shapeot.register`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import RegistrationConfig

__all__ = ["Registration"]


@dataclass(frozen=True)
class Registration:
    """A source shape registered onto a target, in the shapes' own coordinates and units (mm).

    Attributes
    ----------
    source, target : Shape
        The inputs.
    prealign : (4, 4) float64 array
        The linear pre-alignment as a homogeneous matrix on column vectors (world coordinates,
        mm): p -> prealign[:3, :3] @ p + prealign[:3, 3]. Identity when skipped.
    deformation : shapeot.deform.Composition
        The whole map, pre-alignment included: ``deformation.apply(points)`` moves any (N, 3)
        points (landmarks, a grid, another mesh) as the source was moved.
    warped : Shape
        The source moved by the deformation: same faces, ``point_data["displacement"]`` (N, 3).
    displacement : (N, 3) float64 array
        warped.points - source.points (mm).
    correspondences : shapeot.matching.Correspondences
        For each source vertex: matched target point (barycentric projection of the final
        full-resolution OT plan, or the nearest target vertex when the last step was not at full
        resolution), target index (strongest partner / nearest vertex) and mass.
    metrics : dict
        ``{"before": {...}, "after": {...}}``: Chamfer / Hausdorff / HD95, point-to-point and
        point-to-surface (mm); "after" adds area-ratio statistics, folded triangles and the 3D
        Jacobian range; landmark TREs when landmarks were given. Empty if not computed.
    history : list of dict
        One entry per iteration: ``stage`` (prealign, nonrigid, finetune), ``loss`` (OT value for
        the pre-alignment, mean squared distance to the OT targets for the non-rigid levels,
        Sinkhorn divergence + energy for the fine-tuning; normalised units squared), ``blur``.
    config : RegistrationConfig
    landmarks : (L, 3) float64 array or None
        The source landmarks carried through the deformation (mm).
    timings : dict
        Seconds per stage.
    scale : float
        The normalisation scale (mm): RMS distance of the source's vertices to their centroid.
    """

    source: object
    target: object
    prealign: np.ndarray
    deformation: object
    warped: object
    displacement: np.ndarray
    correspondences: object
    metrics: dict
    history: list
    config: RegistrationConfig
    landmarks: np.ndarray | None = None
    timings: dict = field(default_factory=dict)
    scale: float = 1.0

    @property
    def prealigned_points(self) -> np.ndarray:
        """(N, 3) the source vertices moved by the pre-alignment only (mm)."""
        p = np.asarray(self.source.points, dtype=np.float64)
        m = np.asarray(self.prealign, dtype=np.float64)
        return p @ m[:3, :3].T + m[:3, 3]

    @property
    def prealign_displacement(self) -> np.ndarray:
        """(N, 3) the part of ``displacement`` due to the linear pre-alignment (mm)."""
        return self.prealigned_points - np.asarray(self.source.points, dtype=np.float64)

    @property
    def nonrigid_displacement(self) -> np.ndarray:
        """(N, 3) warped - prealigned source: the shape change, without the pose (mm)."""
        return np.asarray(self.warped.points, dtype=np.float64) - self.prealigned_points

    @property
    def normal_displacement(self) -> np.ndarray | None:
        """(N,) the non-rigid displacement along the unit vertex normal of the pre-aligned source
        (mm, positive outwards; a closed mesh is oriented by its signed volume, an open one as
        its faces are wound), the usual signed shape-change measure of shape statistics.
        None for a point cloud."""
        faces = self.source.faces
        if faces is None or len(faces) == 0:
            return None
        from shapeot.shapes.geometry import outward_vertex_normals

        normals = outward_vertex_normals(self.prealigned_points, np.asarray(faces))
        return np.einsum("ij,ij->i", self.nonrigid_displacement, normals)

    def summary(self) -> dict:
        """Plain-data summary (metrics, timings, the pre-alignment, the configuration, the history
        and the version of shapeot that computed it) for JSON."""
        from shapeot.core.version import version

        from .history import history_dicts

        return {
            "shapeot_version": version(),
            "source": self.source.name, "target": self.target.name, "units": self.source.units,
            "n_source": int(self.source.n_points), "n_target": int(self.target.n_points),
            "metrics": self.metrics, "timings": self.timings, "prealign": np.asarray(self.prealign).tolist(),
            "scale": self.scale, "iterations": len(self.history), "config": self.config.to_dict(),
            "history": history_dicts(self.history),
        }
