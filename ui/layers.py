"""What the 3D view draws: the opened shapes and the result layers, as pyvista meshes and actors.

Two parts:

* pure builders (numpy in, ``pyvista.PolyData`` out): displacement magnitudes, the morph between
  a source and its warped copy, correspondence lines coloured by transport mass, displacement
  arrows, the template deformed along a PCA mode;
* :class:`Scene`, which keeps a plotter in step with a :class:`~shapeot.ui.model.ShapeList` and
  holds the result layers (:class:`Layer`), each with its own visibility;
* overlays (:class:`shapeot.shapes.Overlay`: thickness, curvature, parcellations) drawn as a
  colour map on the actor of a shape or of a surface layer (warped source, template), with
  their own scalar bar: a sequential map for continuous values, the label table's colours for
  labels (:func:`overlay_lookup_table`).

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
    "OVERLAY_LAYERS",
    "overlay_units",
    "overlay_title",
    "overlay_values",
    "label_colours",
    "overlay_lookup_table",
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

#: Result layers that are surfaces with one vertex per vertex of a shape: they take overlays.
OVERLAY_LAYERS = ("warped", "template")
#: Colour map of continuous overlays (sequential, perceptually uniform, colour-blind safe).
OVERLAY_CMAP = "viridis"
#: Colour of vertices without a label (-1 in an .annot) and of labels whose table gives none.
UNLABELLED_COLOUR = (128, 128, 128)
#: Prefix of the point array an overlay is drawn from (kept apart from the layers' own arrays).
OVERLAY_ARRAY = "overlay: "
# FreeSurfer's morph files carry no units; their names do (mris_make_surfaces, mris_curvature).
_MORPH_UNITS = {"thickness": "mm", "sulc": "mm", "curv": "1/mm", "area": "mm²", "volume": "mm³",
                "jacobian_white": "ratio", "jacobian": "ratio"}


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


# ------------------------------------------------------------------------------------------- overlays
def overlay_units(overlay) -> str | None:
    """Units of an overlay's values, if known: ``meta["units"]``, or FreeSurfer's convention for
    a morph name (lh.thickness, lh.sulc: mm; lh.curv: 1/mm; lh.area: mm²); None for labels."""
    if overlay.kind != "continuous":
        return None
    units = overlay.meta.get("units")
    if units:
        return str(units)
    name = overlay.name.lower()
    for hemi in ("lh.", "rh."):
        if name.startswith(hemi):
            name = name[len(hemi):]
    return _MORPH_UNITS.get(name.split(".")[0])


def overlay_title(overlay) -> str:
    """Scalar-bar title of an overlay: its name and, when known, its units ("lh.thickness (mm)")."""
    units = overlay_units(overlay)
    title = overlay.name + (f" ({units})" if units else "")
    if np.ndim(overlay.values) == 2:
        title += f" [1 of {overlay.values.shape[1]}]"
    return title


def overlay_values(overlay) -> np.ndarray:
    """The (N,) values drawn for an overlay: its first column when it holds several (a GIfTI
    with several data arrays, an MGH time series)."""
    v = np.asarray(overlay.values)
    return v[:, 0].copy() if v.ndim == 2 else v.copy()


def label_colours(overlay) -> dict[int, tuple[int, int, int]]:
    """RGB (0-255) of every label value of a label overlay, in value order.

    The label table's own colours (an .annot's colour table, a GIfTI label table) where it has
    them; other values (a .label file's 0/1, labels without a colour) get distinct colours of
    matplotlib's ``tab10``, unlabelled ones (value 0 of a .label file) grey. Negative values
    (-1: no label in an .annot) are not listed: they are drawn in :data:`UNLABELLED_COLOUR`.
    """
    if overlay.kind != "labels":
        raise ValueError(f"overlay {overlay.name!r} is {overlay.kind}, not labels")
    present = {int(v) for v in np.unique(overlay_values(overlay))}
    keys = sorted(k for k in present | set(overlay.label_names) | set(overlay.label_colors) if k >= 0)
    from matplotlib import colormaps

    cycle = colormaps["tab10"].colors
    out, spare = {}, 0
    for k in keys:
        if k in overlay.label_colors:
            out[k] = tuple(int(c) for c in overlay.label_colors[k][:3])
        elif overlay.format == "label" and k == 0:
            out[k] = UNLABELLED_COLOUR
        else:
            out[k] = tuple(int(round(255 * c)) for c in cycle[spare % len(cycle)])
            spare += 1
    return out


def overlay_lookup_table(overlay, values: np.ndarray | None = None):
    """How an overlay's values become colours: (lookup table, scalar range, categorical).

    Continuous values: :data:`OVERLAY_CMAP` over their 1st-99th percentiles (a few outliers,
    e.g. the zero thickness of the medial wall, would otherwise flatten the map); values outside
    take the end colours. Labels: an *indexed* table, one exact colour per label value with its
    name as annotation, so neighbouring values never blend along a ramp.

    Returns
    -------
    (pyvista.LookupTable, (float, float), bool)
    """
    import pyvista as pv

    values = overlay_values(overlay) if values is None else np.asarray(values)
    if overlay.kind == "labels":
        colours = label_colours(overlay)
        lut = pv.LookupTable()
        lut.IndexedLookupOn()
        lut.SetNumberOfTableValues(max(len(colours), 1))
        from vtkmodules.vtkCommonCore import vtkVariant

        for i, (value, rgb) in enumerate(colours.items()):
            # +0.25: VTK truncates colour * 255 on the way back to bytes; this lands on the byte.
            lut.SetTableValue(i, *((c + 0.25) / 255.0 for c in rgb), 1.0)
            lut.SetAnnotation(vtkVariant(int(value)), overlay.label_names.get(value, str(value)))
        lut.SetNanColor(*(c / 255.0 for c in UNLABELLED_COLOUR), 1.0)
        keys = list(colours) or [0]
        return lut, (float(min(keys)), float(max(keys))), True
    lo, hi = (float(x) for x in np.percentile(values, [1.0, 99.0]))
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    lut = pv.LookupTable(cmap=OVERLAY_CMAP, scalar_range=(lo, hi))
    return lut, (lo, hi), False


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
    overlays : dict of str to shapeot.shapes.Overlay
        Overlays loaded onto the layer (only the :data:`OVERLAY_LAYERS`), by name.
    colour_by : str or None
        The overlay the layer is coloured by; None: its own colouring.
    """

    name: str
    title: str
    actors: list = field(default_factory=list)
    mesh: Any = None
    scalar_bar: str | None = None
    visible: bool = True
    overlays: dict = field(default_factory=dict)
    colour_by: str | None = None


@dataclass
class _Plain:
    """What colouring an actor by an overlay replaced, to put back for the plain colour."""

    lookup_table: Any
    scalar_range: tuple[float, float]
    scalar_visibility: bool
    scalar_mode: int
    array_name: str
    interpolate: bool
    active_scalars: str | None
    lookup_table_range: bool


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
    overlays_changed(target)
        The overlays of a shape (:class:`ShapeItem`) or a layer (its name), or the one it is
        coloured by, changed.

    Overlays
    --------
    A *target* is a :class:`ShapeItem` or the name of one of the :data:`OVERLAY_LAYERS`. A
    shape's overlays live in its model (``ShapeItem.overlays`` / ``colour_by``, so the shapes
    panel follows them); a layer's in the :class:`Layer`. Either way the overlay colours the
    target's own actor, and its scalar bar is shown with it.
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
        self._shape_meshes: dict[ShapeItem, Any] = {}  # what each shape actor's pipeline reads
        self._plain: dict[Any, _Plain] = {}  # target key -> colouring to restore
        self._overlay_bars: dict[Any, str] = {}  # target key -> title of its overlay's scalar bar
        self._overlay_slots: dict[Any, int] = {}  # target key -> place of that bar, left to right
        self.layers_changed, self.layer_visibility = Event(), Event()
        self.morph_changed, self.mode_changed = Event(), Event()
        self.overlays_changed = Event()
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
        mesh = item.shape.to_pyvista()
        actor = self.plotter.add_mesh(mesh, color=item.colour, opacity=item.opacity,
                                      smooth_shading=True, name=f"shape-{id(item)}", reset_camera=False,
                                      render=False, show_scalar_bar=False, scalars=None)
        actor.SetVisibility(item.visible)
        self._shape_actors[item] = actor
        self._shape_meshes[item] = mesh
        if item.colour_by is not None:
            self._apply_overlay(item)
        if first:
            self.reset_camera()
        self.render()

    def _on_removed(self, item: ShapeItem) -> None:
        self._remove_overlay_bar(item)
        self._plain.pop(item, None)
        self._shape_meshes.pop(item, None)
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
            self._show_overlay_bar(item, item.visible)
        elif name == "colour_by":
            self._apply_overlay(item)
            self.overlays_changed.emit(item)
        elif name == "overlays":
            self.overlays_changed.emit(item)
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
        for name, layer in self.layers.items():
            self._remove_overlay_bar(name)
            self._plain.pop(name, None)
            for actor in layer.actors:
                self.plotter.remove_actor(actor, render=False)
        self.layers = {}
        self.kind, self.result, self._morph_base = None, None, None
        self.layers_changed.emit()
        self.render()

    def set_layer_visible(self, name: str, visible: bool, *, render: bool = True) -> None:
        """Show or hide a result layer (and its scalar bar); ``render=False`` leaves the redraw
        to the caller (one redraw for many layers: at 41k vertices each costs ~1 s in software GL)."""
        layer = self.layers[name]
        layer.visible = bool(visible)
        for actor in layer.actors:
            actor.SetVisibility(layer.visible)
        # An overlay's bar stands in for the layer's own while the layer is coloured by it.
        self._set_bar_visible(layer.scalar_bar, layer.visible and layer.colour_by is None)
        self._show_overlay_bar(name, layer.visible)
        self.layer_visibility.emit(name, layer.visible)
        if render:
            self.render()

    def _add_layer(self, name: str, title: str, mesh, *, visible: bool, scalar_bar: str | None = None,
                   **style) -> Layer:
        args = dict(name=f"layer-{name}", reset_camera=False, render=False)
        if scalar_bar is not None:
            args["scalar_bar_args"] = dict(title=scalar_bar, vertical=True, position_x=0.82, position_y=0.08,
                                           height=0.35, width=0.06, title_font_size=14, label_font_size=12,
                                           color="white", fmt="%.2g", render=False)
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
            self.set_layer_visible(name, layer.visible, render=False)
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

    # ---------------------------------------------------------------------------------- overlays
    def overlay_targets(self) -> list:
        """Everything an overlay can colour now: the shapes, then the present :data:`OVERLAY_LAYERS`."""
        return list(self.shapes) + [name for name in OVERLAY_LAYERS if name in self.layers]

    def target_name(self, target) -> str:
        """How a target is called in menus and messages ("lh_pial", "Warped source")."""
        return target.name if isinstance(target, ShapeItem) else self._layer_for_overlays(target).title

    def _layer_for_overlays(self, name: str) -> Layer:
        if name not in OVERLAY_LAYERS:
            raise ValueError(f"the {name!r} layer cannot show an overlay; only {', '.join(OVERLAY_LAYERS)}")
        if name not in self.layers:
            raise ValueError(f"there is no {name!r} layer now (it comes with a "
                             f"{'registration' if name == 'warped' else 'template'})")
        return self.layers[name]

    def overlay_n_vertices(self, target) -> int:
        """Vertex count an overlay of ``target`` must have."""
        if isinstance(target, ShapeItem):
            return int(target.shape.n_points)
        return int(self._layer_for_overlays(target).mesh.n_points)

    def overlays(self, target) -> dict:
        """The overlays loaded onto ``target`` (a ShapeItem or a layer name), by name."""
        if isinstance(target, ShapeItem):
            return dict(target.overlays)
        return dict(self._layer_for_overlays(target).overlays)

    def colour_by(self, target) -> str | None:
        """The overlay ``target`` is coloured by, or None (its plain colouring)."""
        if isinstance(target, ShapeItem):
            return target.colour_by
        return self._layer_for_overlays(target).colour_by

    def add_overlay(self, target, overlay, *, show: bool = True) -> None:
        """Attach ``overlay`` to ``target`` (replacing one of the same name) and, with ``show``,
        colour the target's actor by it (a layer is also made visible: it was asked for).

        Raises
        ------
        ValueError
            ``target`` takes no overlay, or the overlay's vertex count differs from its
            (:class:`~shapeot.shapes.errors.ShapeFileError` naming the file and both counts).
        """
        if isinstance(target, ShapeItem):
            if target not in self._shape_actors:
                raise ValueError(f"{target.name} is no longer open")
            target.add_overlay(overlay, show=show)  # the model's events redraw the actor
            return
        layer = self._layer_for_overlays(target)
        overlay.check_vertices(layer.mesh.n_points)
        layer.overlays[overlay.name] = overlay
        if show:
            layer.colour_by = overlay.name
            self._apply_overlay(target)
            if not layer.visible:
                self.set_layer_visible(target, True)
        self.overlays_changed.emit(target)
        self.render()

    def set_colour_by(self, target, name: str | None) -> None:
        """Colour ``target`` by its overlay ``name``, or by its plain colouring (None)."""
        if isinstance(target, ShapeItem):
            target.colour_by = name
            return
        layer = self._layer_for_overlays(target)
        if name is not None and name not in layer.overlays:
            raise ValueError(f"{layer.title} has no overlay {name!r}; it has {list(layer.overlays)}")
        if name != layer.colour_by:
            layer.colour_by = name
            self._apply_overlay(target)
            self.overlays_changed.emit(target)
            self.render()

    def overlay_actor(self, target):
        """The actor an overlay of ``target`` colours (the shape's or the layer's own)."""
        if isinstance(target, ShapeItem):
            return self._shape_actors[target]
        return self._layer_for_overlays(target).actors[0]

    def overlay_mesh(self, target):
        """The mesh the target's actor draws from (its point arrays hold the overlay shown)."""
        if isinstance(target, ShapeItem):
            return self._shape_meshes[target]
        return self._layer_for_overlays(target).mesh

    def overlay_bar(self, target) -> str | None:
        """Title of the scalar bar of the overlay ``target`` is coloured by, if any."""
        return self._overlay_bars.get(target)

    def _apply_overlay(self, target) -> None:
        """Draw the target's actor coloured by its current overlay, or put its plain colouring back."""
        actor, mesh = self.overlay_actor(target), self.overlay_mesh(target)
        mapper = actor.mapper
        overlay = self.overlays(target).get(self.colour_by(target))
        self._remove_overlay_bar(target)
        for key in [k for k in mesh.point_data.keys() if k.startswith(OVERLAY_ARRAY)]:
            mesh.point_data.remove(key)
        layer = None if isinstance(target, ShapeItem) else self.layers[target]
        if overlay is None:
            plain = self._plain.pop(target, None)
            if plain is not None:
                mapper.SetLookupTable(plain.lookup_table)
                mapper.SetScalarRange(*plain.scalar_range)
                mapper.SetScalarMode(plain.scalar_mode)
                mapper.SelectColorArray(plain.array_name)
                mapper.SetInterpolateScalarsBeforeMapping(plain.interpolate)
                mapper.SetScalarVisibility(plain.scalar_visibility)
                mapper.SetUseLookupTableScalarRange(plain.lookup_table_range)
                if plain.active_scalars is not None and plain.active_scalars in mesh.point_data:
                    mesh.set_active_scalars(plain.active_scalars, preference="point")
            if layer is not None:
                self._set_bar_visible(layer.scalar_bar, layer.visible)
            mesh.Modified()
            return
        if target not in self._plain:
            self._plain[target] = _Plain(mapper.GetLookupTable(), tuple(mapper.GetScalarRange()),
                                         bool(mapper.GetScalarVisibility()), mapper.GetScalarMode(),
                                         mapper.GetArrayName() or "", bool(mapper.GetInterpolateScalarsBeforeMapping()),
                                         mesh.active_scalars_name, bool(mapper.GetUseLookupTableScalarRange()))
        values = overlay_values(overlay)
        array = OVERLAY_ARRAY + overlay.name
        mesh.point_data[array] = values
        mesh.set_active_scalars(array, preference="point")
        lut, clim, categorical = overlay_lookup_table(overlay, values)
        mapper.SetLookupTable(lut)
        mapper.SetUseLookupTableScalarRange(False)
        mapper.SetScalarRange(*clim)
        # By name, not "the active scalars": the smoothing filter between mesh and mapper passes
        # every array on, and the layer's own array may be made active again (the mode slider).
        mapper.SetScalarModeToUsePointFieldData()
        mapper.SelectColorArray(array)
        mapper.SetColorModeToMapScalars()
        # Interpolating values before the lookup would invent colours between two labels.
        mapper.SetInterpolateScalarsBeforeMapping(not categorical)
        mapper.ScalarVisibilityOn()
        mesh.Modified()
        if layer is not None:
            self._set_bar_visible(layer.scalar_bar, False)
        self._add_overlay_bar(target, overlay, mapper, categorical)
        visible = target.visible if layer is None else layer.visible
        self._show_overlay_bar(target, visible)

    def _add_overlay_bar(self, target, overlay, mapper, categorical: bool) -> None:
        title = overlay_title(overlay)
        if title in self.plotter.scalar_bars:  # the same overlay on another shape: say whose bar this is
            title = f"{title} · {self.target_name(target)}"
        used = {self._overlay_slots[t] for t in self._overlay_bars if t in self._overlay_slots}
        slot = min(set(range(len(used) + 1)) - used)
        self._overlay_slots[target] = slot
        # Left of the view, above the orientation axes (the result layers' bars are on the right),
        # text on the bar's right: on its left it would leave the view. VTK draws the label names of
        # an indexed table on the side opposite the numbers, hence the two settings.
        args = dict(title=title, mapper=mapper, vertical=True, position_x=0.1 + 0.22 * slot, position_y=0.3,
                    height=0.5 if categorical else 0.4, width=0.06, title_font_size=14, label_font_size=12,
                    color="white", fmt="%.3g", n_labels=0 if categorical else 5, render=False)
        bar = self.plotter.add_scalar_bar(**args)
        if bar is None:
            bar = self.plotter.scalar_bars[title]
        if categorical:
            bar.SetTextPositionToPrecedeScalarBar()
        else:
            bar.SetTextPositionToSucceedScalarBar()
        self._overlay_bars[target] = title

    def _set_bar_visible(self, title: str | None, visible: bool) -> None:
        """Show or hide the scalar bar called ``title``, if there is one."""
        if title and title in self.plotter.scalar_bars:
            self.plotter.scalar_bars[title].SetVisibility(bool(visible))

    def _show_overlay_bar(self, target, visible: bool) -> None:
        self._set_bar_visible(self._overlay_bars.get(target), visible)

    def _remove_overlay_bar(self, target) -> None:
        title = self._overlay_bars.pop(target, None)
        self._overlay_slots.pop(target, None)
        if title is not None and title in self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(title, render=False)

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
            amp_range = (0.0, max(float(amp.max()), 1e-9))
            if "template" in self._plain:  # coloured by an overlay: the range waits for the plain colour
                self._plain["template"].scalar_range = amp_range
            else:
                layer.actors[0].mapper.scalar_range = amp_range
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
