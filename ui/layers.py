"""What the result layers are made of: pure builders (numpy in, ``pyvista.PolyData`` out) and
the :class:`Layer` record.

The builders: displacement magnitudes, the morph between a source and its warped copy,
correspondence lines coloured by transport mass, displacement arrows, the template deformed along
a PCA mode. :class:`~shapeot.ui.scene.Scene` turns them into actors; the colours of overlays are
in :mod:`shapeot.ui.overlay_colours`.

Nothing here touches a plotter; pyvista is imported when a function needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "MAGNITUDE",
    "NONRIGID",
    "NORMAL",
    "MASS",
    "MODE_AMPLITUDE",
    "OVERLAY_LAYERS",
    "displacement_magnitude",
    "subsample",
    "morph_points",
    "mode_points",
    "correspondence_lines",
    "displacement_arrows",
    "template_shape",
    "template_modes",
    "Layer",
]

#: Point array holding |displacement| (mm): the colour map of the ``magnitude`` layer.
MAGNITUDE = "displacement magnitude (mm)"
NONRIGID = "non-rigid displacement (mm)"
NORMAL = "normal displacement (mm, + outwards)"
#: Cell array of the correspondence lines: mass sent along each line.
MASS = "transport mass"
#: Point array of the template layer: |mode| times its standard deviation (mm per SD).
MODE_AMPLITUDE = "mode amplitude (mm per SD)"

BACKGROUND = ("#1b1f2a", "#4a5468")  # bottom and top of the 3D view's gradient
WARPED_COLOUR = "#d55e00"
ARROW_COLOUR = "#222222"
COHORT_COLOUR = "#9ecae1"
TEMPLATE_COLOUR = "#e69f00"

#: Result layers that are surfaces with one vertex per vertex of a shape: they take overlays.
OVERLAY_LAYERS = ("warped", "template")


# ------------------------------------------------------------------------------------------- builders
def displacement_magnitude(displacement: np.ndarray) -> np.ndarray:
    """|d_i| for an (N, 3) displacement field: (N,) float64, same units (mm)."""
    d = np.asarray(displacement, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"displacement must be (N, 3); got {d.shape}")
    return np.linalg.norm(d, axis=1)


def subsample(n: int, k: int, *, seed: int = 0) -> np.ndarray:
    """At most ``k`` sorted indices out of ``range(n)``, drawn without replacement (reproducible)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def morph_points(points: np.ndarray, displacement: np.ndarray, t: float) -> np.ndarray:
    """points + t * displacement: t = 0 is the source, t = 1 the warped source ((N, 3), mm)."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1]; got {t}")
    return np.asarray(points) + float(t) * np.asarray(displacement)


def mode_points(mean: np.ndarray, mode: np.ndarray, sd: float, coefficient: float) -> np.ndarray:
    """The template moved along one PCA mode: mean + coefficient * sd * mode ((N, 3), mm).

    Parameters
    ----------
    mean : (N, 3) the template's vertices (mm)
    mode : (N, 3) a unit-norm principal direction of the subjects' vertex positions
    sd : float
        Standard deviation of the population along the mode (mm): sqrt of its variance.
    coefficient : float
        How many standard deviations to move (the slider's value).
    """
    return np.asarray(mean) + float(coefficient) * float(sd) * np.asarray(mode)


def correspondence_lines(points: np.ndarray, targets: np.ndarray, mass: np.ndarray, *, max_lines: int = 400,
                         seed: int = 0):
    """Segments from source points to their matched target points, for a subsample of them.

    Parameters
    ----------
    points, targets : (N, 3) float arrays (mm)
    mass : (N,) float array
        Mass sent from each source point; stored as the cell array :data:`MASS`.
    max_lines : int, default: 400
        Lines drawn at most (a reproducible random subsample: a 10k mesh would be a hairball).

    Returns
    -------
    pyvista.PolyData
        2k points (the sources, then their targets) and k line cells; ``field_data["index"]``
        holds the source indices drawn.
    """
    import pyvista as pv

    points, targets, mass = np.asarray(points), np.asarray(targets), np.asarray(mass)
    idx = subsample(len(points), max_lines, seed=seed)
    k = len(idx)
    pts = np.vstack([points[idx], targets[idx]])
    cells = np.column_stack([np.full(k, 2), np.arange(k), np.arange(k) + k]).ravel()
    lines = pv.PolyData(pts, lines=cells)
    lines.cell_data[MASS] = mass[idx].astype(np.float64)
    lines.field_data["index"] = idx
    return lines


def displacement_arrows(points: np.ndarray, displacement: np.ndarray, *, max_arrows: int = 600, seed: int = 1):
    """Arrows from source points along their displacement, as long as the displacement (mm).

    Returns
    -------
    pyvista.PolyData
        The glyphs (arrow geometry), built from a reproducible subsample of at most
        ``max_arrows`` points; zero displacements give no arrow.
    """
    import pyvista as pv

    points, displacement = np.asarray(points), np.asarray(displacement)
    idx = subsample(len(points), max_arrows, seed=seed)
    cloud = pv.PolyData(points[idx].copy())
    cloud.point_data["displacement"] = displacement[idx].copy()
    cloud.point_data["length"] = displacement_magnitude(displacement[idx])
    return cloud.glyph(orient="displacement", scale="length", factor=1.0,
                       geom=pv.Arrow(tip_length=0.3, tip_radius=0.12, shaft_radius=0.04))


# ------------------------------------------------------------------------------------------- templates
def template_shape(tpl):
    """The template mesh (:class:`shapeot.Shape`) of a :class:`shapeot.Template`."""
    return tpl.shape


def template_modes(tpl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (N, 3) mm, modes (K, N, 3) of unit area-weighted RMS norm, standard deviations (K,) mm)
    of a :class:`shapeot.Template` (its ``modes``: see :mod:`shapeot.templates.pca`)."""
    m = tpl.modes
    return np.asarray(m.mean), np.asarray(m.components), np.sqrt(np.maximum(np.asarray(m.variances), 0.0))


# ------------------------------------------------------------------------------------------- layers
@dataclass
class Layer:
    """One result layer: actors that are shown and hidden together.

    Attributes
    ----------
    name : str
        Key ("warped", "magnitude", "lines", "arrows", "template", "cohort").
    title : str
        Label of its check box.
    actors : list of vtkActor
    mesh : pyvista.PolyData or None
        The main dataset (the one a colour map reads, or the one the morph slider moves).
    scalar_bar : str or None
        Title of its scalar bar, shown and hidden with the layer.
    visible : bool

    The overlays of the :data:`OVERLAY_LAYERS` are kept by the scene's
    :class:`~shapeot.ui.overlay_layers.OverlayPainter`, not here.
    """

    name: str
    title: str
    actors: list = field(default_factory=list)
    mesh: Any = None
    scalar_bar: str | None = None
    visible: bool = True
