"""What the 3D view draws: the opened shapes and the result layers, as pyvista meshes and actors.

Two parts:

* pure builders (numpy in, ``pyvista.PolyData`` out): displacement magnitudes, the morph between
  a source and its warped copy, correspondence lines coloured by transport mass, displacement
  arrows, the template deformed along a PCA mode;
* :class:`Scene`, which keeps a plotter in step with a :class:`~shapeot.ui.model.ShapeList` and
  holds the result layers (:class:`Layer`), each with its own visibility.

Everything here must run on the GUI thread (VTK is not thread-safe); pyvista is imported when a
function needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import Event, ShapeItem, ShapeList

__all__ = [
    "MAGNITUDE",
    "NONRIGID",
    "NORMAL",
    "MASS",
    "MODE_AMPLITUDE",
    "displacement_magnitude",
    "subsample",
    "morph_points",
    "mode_points",
    "correspondence_lines",
    "displacement_arrows",
    "Layer",
    "Scene",
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
    """

    name: str
    title: str
    actors: list = field(default_factory=list)
    mesh: Any = None
    scalar_bar: str | None = None
    visible: bool = True


class Scene:
    """Keeps a pyvista plotter in step with the opened shapes, and draws result layers.

    Parameters
    ----------
    plotter : pyvista.Plotter or pyvistaqt.QtInteractor
    shapes : ShapeList
        Observed: adding, removing or restyling a shape updates its actor.

    Events
    ------
    layers_changed()
        The set of result layers changed (a new result replaced the old one).
    layer_visibility(name, visible)
    morph_changed(t)
    mode_changed(index, coefficient)
    """

    def __init__(self, plotter, shapes: ShapeList) -> None:
        self.plotter = plotter
        self.shapes = shapes
        self._shape_actors: dict[ShapeItem, Any] = {}
        self.layers: dict[str, Layer] = {}
        self.kind: str | None = None  # "registration", "match", "template"
        self.result: Any = None
        self._morph = 1.0
        self._morph_base: tuple[np.ndarray, np.ndarray] | None = None  # (points, displacement)
        self._mode = (0, 0.0)
        self.layers_changed, self.layer_visibility = Event(), Event()
        self.morph_changed, self.mode_changed = Event(), Event()
        shapes.added.connect(self._on_added)
        shapes.removed.connect(self._on_removed)
        shapes.changed.connect(self._on_changed)
        for item in shapes:
            self._on_added(item)

    # ---------------------------------------------------------------------------------- shapes
    def shape_actor(self, item: ShapeItem):
        """The VTK actor drawing ``item``."""
        return self._shape_actors[item]

    def _on_added(self, item: ShapeItem) -> None:
        first = not self._shape_actors and not self.layers
        actor = self.plotter.add_mesh(item.shape.to_pyvista(), color=item.colour, opacity=item.opacity,
                                      smooth_shading=True, name=f"shape-{id(item)}", reset_camera=False,
                                      render=False, show_scalar_bar=False, scalars=None)
        actor.SetVisibility(item.visible)
        self._shape_actors[item] = actor
        if first:
            self.reset_camera()
        self.render()

    def _on_removed(self, item: ShapeItem) -> None:
        actor = self._shape_actors.pop(item, None)
        if actor is not None:
            self.plotter.remove_actor(actor, render=False)
        self.render()

    def _on_changed(self, item: ShapeItem, name: str) -> None:
        actor = self._shape_actors.get(item)
        if actor is None:
            return
        if name == "visible":
            actor.SetVisibility(item.visible)
        elif name == "colour":
            actor.prop.color = item.colour
        elif name == "opacity":
            actor.prop.opacity = item.opacity
        self.render()

    # ---------------------------------------------------------------------------------- layers
    def render(self) -> None:
        """Redraw the view."""
        self.plotter.render()

    def reset_camera(self) -> None:
        """Frame everything visible, seen from the left (sagittal view of a left hemisphere)."""
        self.plotter.view_yz(negative=True, render=False)
        self.plotter.reset_camera(render=False)

    def clear_results(self) -> None:
        """Remove every result layer."""
        for layer in self.layers.values():
            for actor in layer.actors:
                self.plotter.remove_actor(actor, render=False)
        self.layers = {}
        self.kind, self.result, self._morph_base = None, None, None
        self.layers_changed.emit()
        self.render()

    def set_layer_visible(self, name: str, visible: bool) -> None:
        """Show or hide a result layer (and its scalar bar)."""
        layer = self.layers[name]
        layer.visible = bool(visible)
        for actor in layer.actors:
            actor.SetVisibility(layer.visible)
        if layer.scalar_bar and layer.scalar_bar in self.plotter.scalar_bars:
            self.plotter.scalar_bars[layer.scalar_bar].SetVisibility(layer.visible)
        self.layer_visibility.emit(name, layer.visible)
        self.render()

    def _add_layer(self, name: str, title: str, mesh, *, visible: bool, scalar_bar: str | None = None,
                   **style) -> Layer:
        args = dict(name=f"layer-{name}", reset_camera=False, render=False)
        if scalar_bar is not None:
            args["scalar_bar_args"] = dict(title=scalar_bar, vertical=True, position_x=0.82, position_y=0.08,
                                           height=0.35, width=0.06, title_font_size=14, label_font_size=12,
                                           color="white", fmt="%.2g")
            if name == "lines":
                args["scalar_bar_args"].update(position_y=0.55)
        else:
            args["show_scalar_bar"] = False
        actor = self.plotter.add_mesh(mesh, **args, **style)
        layer = Layer(name, title, [actor], mesh, scalar_bar, visible)
        self.layers[name] = layer
        return layer

    def _finish(self, kind: str, result: Any) -> None:
        self.kind, self.result = kind, result
        for name, layer in self.layers.items():
            self.set_layer_visible(name, layer.visible)
        self.layers_changed.emit()
        self.render()

    def show_registration(self, reg) -> None:
        """Layers of a :class:`shapeot.Registration`: warped source, displacement colour map,
        correspondence lines coloured by transport mass, displacement arrows.

        The warped source and the colour map follow the morph slider (:meth:`set_morph`).
        """
        self.clear_results()
        src = np.asarray(reg.source.points)
        disp = np.asarray(reg.displacement)
        self._morph_base = (src, disp)
        self._morph = 1.0
        base = reg.source.to_pyvista()
        base.clear_data()
        warped = base.copy()
        warped.points = morph_points(src, disp, 1.0)
        self._add_layer("warped", "Warped source", warped, visible=False, color=WARPED_COLOUR,
                        smooth_shading=True, scalars=None)
        coloured = warped.copy()
        coloured.point_data[MAGNITUDE] = displacement_magnitude(disp)
        self._add_layer("magnitude", "Displacement colour map", coloured, visible=True, scalars=MAGNITUDE,
                        scalar_bar="displacement (mm)", cmap="viridis", smooth_shading=True)
        # The shape change without the pose, and its signed component along the outward normal.
        nonrigid = warped.copy()
        nonrigid.point_data[NONRIGID] = displacement_magnitude(reg.nonrigid_displacement)
        self._add_layer("nonrigid", "Non-rigid displacement colour map", nonrigid, visible=False, scalars=NONRIGID,
                        scalar_bar="non-rigid displacement (mm)", cmap="viridis", smooth_shading=True)
        normal = reg.normal_displacement
        if normal is not None:
            signed = warped.copy()
            signed.point_data[NORMAL] = normal
            bound = float(np.abs(normal).max()) or 1.0
            self._add_layer("normal", "Normal displacement (signed)", signed, visible=False, scalars=NORMAL,
                            scalar_bar="normal displacement (mm)", cmap="coolwarm", clim=(-bound, bound),
                            smooth_shading=True)
        corr = reg.correspondences
        self._add_correspondence_layers(src, np.asarray(corr.target_points), np.asarray(corr.mass), disp)
        self._finish("registration", reg)
        self.morph_changed.emit(self._morph)

    def show_match(self, result) -> None:
        """Layers of OT correspondences (:class:`shapeot.ui.tasks.MatchResult`): lines coloured
        by transport mass, arrows, and the source coloured by its OT displacement."""
        self.clear_results()
        src = np.asarray(result.source.points)
        corr = result.correspondences
        disp = np.asarray(corr.displacement)
        coloured = result.source.to_pyvista()
        coloured.clear_data()
        coloured.point_data[MAGNITUDE] = displacement_magnitude(disp)
        self._add_layer("magnitude", "OT displacement colour map", coloured, visible=False, scalars=MAGNITUDE,
                        scalar_bar="displacement (mm)", cmap="viridis", smooth_shading=True)
        self._add_correspondence_layers(src, np.asarray(corr.target_points), np.asarray(corr.mass), disp,
                                        lines_visible=True)
        self._finish("match", result)

    def _add_correspondence_layers(self, src, targets, mass, disp, *, lines_visible: bool = False) -> None:
        lines = correspondence_lines(src, targets, mass)
        self._add_layer("lines", "Correspondence lines", lines, visible=lines_visible, scalars=MASS,
                        scalar_bar=MASS, cmap="plasma", line_width=3, render_lines_as_tubes=False)
        self._add_layer("arrows", "Displacement arrows", displacement_arrows(src, disp), visible=False,
                        color=ARROW_COLOUR, scalars=None)

    def show_template(self, result) -> None:
        """Layers of a template (:class:`shapeot.ui.tasks.TemplateResult`): the template
        coloured by the amplitude of the current PCA mode, and the subjects faded around it."""
        import pyvista as pv

        self.clear_results()
        tpl = result.template
        shape = template_shape(tpl)
        subjects = result.aligned_subjects()
        cohort = pv.merge([s.to_pyvista() for s in subjects]) if subjects else None
        if cohort is not None:
            cohort.clear_data()
            # Where every subject overlaps, the faded cohort covers about 40 % of the template.
            opacity = float(np.clip(1.0 - 0.6 ** (1.0 / len(subjects)), 0.03, 0.15))
            self._add_layer("cohort", f"Subjects ({len(subjects)}, aligned)", cohort, visible=True,
                            color=COHORT_COLOUR, opacity=opacity, smooth_shading=True, scalars=None)
        mesh = shape.to_pyvista()
        mesh.clear_data()
        mesh.point_data[MODE_AMPLITUDE] = np.zeros(mesh.n_points)
        self._add_layer("template", "Template", mesh, visible=True, scalars=MODE_AMPLITUDE,
                        scalar_bar=MODE_AMPLITUDE, cmap="magma", smooth_shading=True)
        self.kind, self.result = "template", result
        self._mode = (0, 0.0)
        self.set_mode(0, 0.0)
        self._finish("template", result)

    # ---------------------------------------------------------------------------------- sliders
    @property
    def morph(self) -> float:
        """Position of the morph between source (0) and warped source (1)."""
        return self._morph

    def set_morph(self, t: float) -> None:
        """Move the warped source and the colour map to source + t * displacement."""
        if self._morph_base is None:
            return
        pts = morph_points(*self._morph_base, t)
        for name in ("warped", "magnitude", "nonrigid", "normal"):
            if name in self.layers:
                self.layers[name].mesh.points = pts
        self._morph = float(t)
        self.morph_changed.emit(self._morph)
        self.render()

    @property
    def mode(self) -> tuple[int, float]:
        """(mode index, coefficient in standard deviations) shown by the template layer."""
        return self._mode

    def set_mode(self, index: int, coefficient: float) -> None:
        """Deform the template along PCA mode ``index`` by ``coefficient`` standard deviations."""
        if self.kind != "template" or "template" not in self.layers:
            return
        mean, modes, sds = template_modes(self.result.template)
        layer = self.layers["template"]
        if len(modes) == 0:
            layer.mesh.points = mean
        else:
            index = int(np.clip(index, 0, len(modes) - 1))
            layer.mesh.points = mode_points(mean, modes[index], sds[index], coefficient)
            amp = np.linalg.norm(modes[index], axis=1) * sds[index]
            layer.mesh.point_data[MODE_AMPLITUDE] = amp
            layer.actors[0].mapper.scalar_range = (0.0, max(float(amp.max()), 1e-9))
        self._mode = (int(index), float(coefficient))
        self.mode_changed.emit(*self._mode)
        self.render()


# ------------------------------------------------------------------------------------------- templates
def template_shape(tpl):
    """The template mesh (:class:`shapeot.Shape`) of a :class:`shapeot.Template`."""
    return tpl.shape


def template_modes(tpl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (N, 3) mm, modes (K, N, 3) of unit area-weighted RMS norm, standard deviations (K,) mm)
    of a :class:`shapeot.Template` (its ``modes``: see :mod:`shapeot.templates.pca`)."""
    m = tpl.modes
    return np.asarray(m.mean), np.asarray(m.components), np.sqrt(np.maximum(np.asarray(m.variances), 0.0))
