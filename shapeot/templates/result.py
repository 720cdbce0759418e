"""The :class:`Template` returned by :func:`shapeot.template`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shapeot.registration.history import history_dicts

from .config import TemplateConfig
from .pca import Modes

__all__ = ["Template"]


@dataclass(frozen=True)
class Template:
    """A population template, its dense correspondences and its statistics (mm).

    Everything lives in the *template frame*: the subjects' common (generalised Procrustes)
    frame, in which subject s is ``alignments[s]`` applied to its own coordinates.

    Attributes
    ----------
    shape : Shape
        The template mesh: the medoid subject's triangles on the barycenter's vertex positions
        (N, 3), mm.
    registrations : tuple of Registration
        One per subject: the last pass's template registered onto the subject in the template
        frame. ``registrations[s].warped`` is subject s in the template's vertex indexing (same
        faces): dense correspondences across the cohort. Their ``source`` is the template of
        the last pass, which differs from ``shape`` by the last update (``history[-1]
        .extra["move_rms_mm"]``; its move along the normals, ``history[-1].value``, was below
        ``config.tolerance_mm`` when ``converged``).
    subjects : tuple of Shape
        The input shapes, in their own coordinates.
    names : tuple of str
        One unique name per subject (the shape names, made unique).
    weights : (S,) float64 array
        Subject weights (sum 1).
    alignments : (S, 4, 4) float64 array
        Subject -> template frame maps (rigid or similarity, on column vectors, mm).
    modes : Modes
        Mean (N, 3) and principal modes of the corresponded positions (:mod:`.pca`).
    distances : dict of str to (S,) float64 arrays
        Per-subject distances to the template (mm): ``deformation_rms`` (area-weighted RMS of
        the displacement from the template to the corresponded subject) and, when computed,
        ``surface`` (symmetric mean point-to-surface distance between the template and the
        aligned subject) and ``fit`` (the same between the corresponded and the aligned subject:
        the registration's residual), over all vertices both ways.
    medoid : int
        Index of the medoid subject (the initial template).
    converged : bool
        The last update moved the template's surface less than ``config.tolerance_mm`` (RMS of
        the move along the vertex normals).
    history : list of HistoryEntry
        One entry per Procrustes round (stage "procrustes": ``value`` the weighted OT value,
        ``extra["change_mm"]``) and per template iteration (stage "template": ``value`` the move
        along the normals, RMS, mm (the convergence measure); ``extra``: move_rms_mm,
        move_max_mm (vertex moves, tangential sliding included), deformation_rms_mm (weighted
        mean over subjects), seconds).
    config : TemplateConfig
    timings : dict
        Seconds per stage ("procrustes", "iterations", "statistics", "total").
    executor : str
        Where the subjects' work ran ("in-process" or "dask").
    """

    shape: object
    registrations: tuple
    subjects: tuple
    names: tuple
    weights: np.ndarray
    alignments: np.ndarray
    modes: Modes
    distances: dict
    medoid: int
    converged: bool
    history: list
    config: TemplateConfig
    timings: dict = field(default_factory=dict)
    executor: str = "in-process"

    @property
    def mean(self) -> np.ndarray:
        """(N, 3) weighted mean of the corresponded subjects (mm): ``modes.mean``."""
        return self.modes.mean

    @property
    def corresponded(self) -> np.ndarray:
        """(S, N, 3) every subject's position of every template vertex (template frame, mm)."""
        return np.stack([np.asarray(r.warped.points) for r in self.registrations])

    def corresponded_shape(self, s: int):
        """Subject ``s`` as a mesh with the template's faces and vertex indexing (template frame),
        with point data ``displacement`` (N, 3): its offset from the template (mm)."""
        pts = np.asarray(self.registrations[s].warped.points)
        return self.shape.with_points(pts, weights=None, name=self.names[s],
                                      point_data={"displacement": pts - np.asarray(self.shape.points)})

    def mode_shape(self, k: int, sd: float):
        """The template's mesh at the mean moved ``sd`` standard deviations along mode ``k``
        (0-based), with point data ``mode`` (N, 3): the displacement of one standard deviation."""
        step = float(np.sqrt(self.modes.variances[k])) * self.modes.components[k]
        return self.shape.with_points(self.modes.shape_at(k, sd), weights=None,
                                      name=f"mode {k + 1} at {sd:+g} SD", point_data={"mode": step})

    def summary(self) -> dict:
        """Plain data for JSON: subjects, distances, alignments, modes, history, timings,
        configuration, and the version of shapeot that built it."""
        from shapeot.core.version import version

        return {
            "shapeot_version": version(),
            "n_subjects": len(self.subjects), "n_vertices": int(self.shape.n_points), "units": self.shape.units,
            "medoid": self.names[self.medoid], "converged": self.converged, "executor": self.executor,
            "subjects": [
                {"name": n, "weight": float(self.weights[s]), "n_points": int(self.subjects[s].n_points),
                 "source": None if self.subjects[s].source is None else str(self.subjects[s].source.path),
                 "alignment": np.round(self.alignments[s], 10).tolist(),
                 **{f"{k}_mm": float(v[s]) for k, v in self.distances.items()}}
                for s, n in enumerate(self.names)
            ],
            "modes": self.modes.summary(),
            "history": history_dicts(self.history), "timings": self.timings, "config": self.config.to_dict(),
        }
