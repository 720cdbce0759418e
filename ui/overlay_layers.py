"""Overlays on actors: the scene's shapes and surface layers coloured by per-vertex values.

:class:`OverlayPainter` colours the actor of a *target* (a :class:`~shapeot.ui.model.ShapeItem`,
or the name of one of the :data:`~shapeot.ui.layers.OVERLAY_LAYERS`) by one of its overlays
(:class:`shapeot.shapes.Overlay`: thickness, curvature, a parcellation), puts the target's plain
colouring back, and keeps the scalar bar of every coloured target. A shape's overlays live in its
model (``ShapeItem.overlays`` / ``colour_by``, so the shapes panel follows them); a layer's live
here, and go with the layer. The colours themselves come from :mod:`shapeot.ui.overlay_colours`.

Everything here must run on the GUI thread (VTK is not thread-safe).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .layers import OVERLAY_LAYERS, Layer
from .model import Event, ShapeItem, ShapeList
from .overlay_colours import OVERLAY_ARRAY, overlay_lookup_table, overlay_title, overlay_values

__all__ = ["OverlayPainter"]


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

    @classmethod
    def of(cls, mapper, mesh) -> _Plain:
        """The colouring ``mapper`` draws ``mesh`` with now."""
        return cls(mapper.GetLookupTable(), tuple(mapper.GetScalarRange()), bool(mapper.GetScalarVisibility()),
                   mapper.GetScalarMode(), mapper.GetArrayName() or "",
                   bool(mapper.GetInterpolateScalarsBeforeMapping()), mesh.active_scalars_name,
                   bool(mapper.GetUseLookupTableScalarRange()))

    def restore(self, mapper, mesh) -> None:
        """Draw ``mesh`` with this colouring again."""
        mapper.SetLookupTable(self.lookup_table)
        mapper.SetScalarRange(*self.scalar_range)
        mapper.SetScalarMode(self.scalar_mode)
        mapper.SelectColorArray(self.array_name)
        mapper.SetInterpolateScalarsBeforeMapping(self.interpolate)
        mapper.SetScalarVisibility(self.scalar_visibility)
        mapper.SetUseLookupTableScalarRange(self.lookup_table_range)
        if self.active_scalars is not None and self.active_scalars in mesh.point_data:
            mesh.set_active_scalars(self.active_scalars, preference="point")


@dataclass
class _Surface:
    """An actor an overlay can colour, and what colouring it by one has changed."""

    actor: Any
    mesh: Any  # the dataset the actor's pipeline reads: it takes the overlay's point array
    plain: _Plain | None = None  # the colouring to put back; None while the actor shows it
    bar: str | None = None  # title of the scalar bar of the overlay shown
    slot: int = 0  # place of that bar, left to right


@dataclass
class _LayerOverlays:
    """The overlays of a result layer, which (unlike a shape's) has no model to keep them."""

    layer: Layer
    overlays: dict = field(default_factory=dict)
    colour_by: str | None = None


def _set_bar_visible(plotter, title: str | None, visible: bool) -> None:
    """Show or hide the plotter's scalar bar called ``title``, if there is one."""
    if title and title in plotter.scalar_bars:
        plotter.scalar_bars[title].SetVisibility(bool(visible))


def _map_overlay(mapper, mesh, overlay) -> bool:
    """Make ``mapper`` colour ``mesh`` by ``overlay``; True when its values are labels."""
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
    return categorical


class OverlayPainter:
    """Colours the scene's shapes and surface layers by their overlays, each with its scalar bar.

    The :class:`~shapeot.ui.scene.Scene` owns one: it hands over each shape's actor
    (:meth:`add_shape`) and each result layer (:meth:`add_layer`) as they come and go.

    Parameters
    ----------
    plotter : pyvista.Plotter or pyvistaqt.QtInteractor
    shapes : ShapeList
        Observed: ``events.colour_by`` repaints a shape's actor, ``events.overlays`` is passed
        on as :attr:`changed`.
    reveal : callable(str)
        Shows a hidden layer (the scene's ``set_layer_visible``, so its check box follows):
        colouring a layer by an overlay asks for it to be seen.

    Events
    ------
    changed(target)
        The overlays of a target, or the one it is coloured by, changed.
    """

    def __init__(self, plotter, shapes: ShapeList, reveal: Callable[[str], None]) -> None:
        self.plotter = plotter
        self.shapes = shapes
        self._reveal = reveal
        self._surfaces: dict[Any, _Surface] = {}  # target -> its actor: open shapes, present overlay layers
        self._layers: dict[str, _LayerOverlays] = {}
        self.changed = Event()
        shapes.events.colour_by.connect(self._on_colour_by)
        shapes.events.overlays.connect(self._on_overlays)

    # ------------------------------------------------------------------------------ what is drawn
    def add_shape(self, item: ShapeItem, actor, mesh) -> None:
        """Take the actor drawing ``item`` from ``mesh`` (coloured at once if ``item`` asks for it)."""
        self._surfaces[item] = _Surface(actor, mesh)
        if item.colour_by is not None:
            self.paint(item)

    def add_layer(self, layer: Layer) -> None:
        """Take a new result layer; only the :data:`OVERLAY_LAYERS` can be coloured, others are left."""
        if layer.name in OVERLAY_LAYERS:
            self._surfaces[layer.name] = _Surface(layer.actors[0], layer.mesh)
            self._layers[layer.name] = _LayerOverlays(layer)

    def remove(self, target) -> None:
        """Forget a shape or a layer whose actor leaves the view (with its overlays and bar)."""
        self._remove_bar(target)
        self._surfaces.pop(target, None)
        self._layers.pop(target, None)

    # ------------------------------------------------------------------------------ targets
    def targets(self) -> list:
        """Everything an overlay can colour now: the shapes, then the present :data:`OVERLAY_LAYERS`."""
        return list(self.shapes) + [name for name in OVERLAY_LAYERS if name in self._layers]

    def _layer(self, name: str) -> _LayerOverlays:
        if name not in OVERLAY_LAYERS:
            raise ValueError(f"the {name!r} layer cannot show an overlay; only {', '.join(OVERLAY_LAYERS)}")
        if name not in self._layers:
            raise ValueError(f"there is no {name!r} layer now (it comes with a "
                             f"{'registration' if name == 'warped' else 'template'})")
        return self._layers[name]

    def _surface(self, target) -> _Surface:
        if not isinstance(target, ShapeItem):
            self._layer(target)  # a name that is no target says why
        return self._surfaces[target]

    def target_name(self, target) -> str:
        """How a target is called in menus and messages ("lh_pial", "Warped source")."""
        return target.name if isinstance(target, ShapeItem) else self._layer(target).layer.title

    def n_vertices(self, target) -> int:
        """Vertex count an overlay of ``target`` must have."""
        if isinstance(target, ShapeItem):
            return int(target.shape.n_points)
        return int(self._layer(target).layer.mesh.n_points)

    def overlays(self, target) -> dict:
        """The overlays loaded onto ``target`` (a ShapeItem or a layer name), by name."""
        if isinstance(target, ShapeItem):
            return dict(target.overlays)
        return dict(self._layer(target).overlays)

    def colour_by(self, target) -> str | None:
        """The overlay ``target`` is coloured by, or None (its plain colouring)."""
        if isinstance(target, ShapeItem):
            return target.colour_by
        return self._layer(target).colour_by

    def actor(self, target):
        """The actor an overlay of ``target`` colours (the shape's or the layer's own)."""
        return self._surface(target).actor

    def mesh(self, target):
        """The mesh the target's actor draws from (its point arrays hold the overlay shown)."""
        return self._surface(target).mesh

    def bar(self, target) -> str | None:
        """Title of the scalar bar of the overlay ``target`` is coloured by, if any."""
        surface = self._surfaces.get(target)
        return None if surface is None else surface.bar

    def _visible(self, target) -> bool:
        return target.visible if isinstance(target, ShapeItem) else self._layers[target].layer.visible

    # ------------------------------------------------------------------------------ edits
    def add_overlay(self, target, overlay, *, show: bool = True) -> None:
        """Attach ``overlay`` to ``target`` (replacing one of the same name) and, with ``show``,
        colour the target's actor by it (a hidden layer is revealed: it was asked for).

        Raises
        ------
        ValueError
            ``target`` takes no overlay, or the overlay's vertex count differs from its
            (:class:`~shapeot.shapes.errors.ShapeFileError` naming the file and both counts).
        """
        if isinstance(target, ShapeItem):
            if target not in self._surfaces:
                raise ValueError(f"{target.name} is no longer open")
            target.add_overlay(overlay, show=show)  # the model's events repaint the actor
            return
        state = self._layer(target)
        overlay.check_vertices(state.layer.mesh.n_points)
        state.overlays[overlay.name] = overlay
        if show:
            state.colour_by = overlay.name
        if state.colour_by == overlay.name:  # shown now, or a new version of the one shown
            self.paint(target)
        if show and not state.layer.visible:
            self._reveal(target)
        self.changed.emit(target)
        self.plotter.render()

    def set_colour_by(self, target, name: str | None) -> None:
        """Colour ``target`` by its overlay ``name``, or by its plain colouring (None)."""
        if isinstance(target, ShapeItem):
            target.colour_by = name  # the model's events repaint the actor
            return
        state = self._layer(target)
        if name is not None and name not in state.overlays:
            raise ValueError(f"{state.layer.title} has no overlay {name!r}; it has {list(state.overlays)}")
        if name != state.colour_by:
            state.colour_by = name
            self.paint(target)
            self.changed.emit(target)
            self.plotter.render()

    def set_plain_range(self, target, scalar_range: tuple[float, float]) -> None:
        """Set the scalar range of the target's own colouring: now, or, while an overlay colours
        the target, for when the plain colouring is put back."""
        surface = self._surfaces[target]
        if surface.plain is not None:
            surface.plain.scalar_range = scalar_range
        else:
            surface.actor.mapper.scalar_range = scalar_range

    def _on_colour_by(self, item: ShapeItem) -> None:
        if item in self._surfaces:
            self.paint(item)
            self.changed.emit(item)
            self.plotter.render()

    def _on_overlays(self, item: ShapeItem) -> None:
        # Loading or dropping an overlay changes nothing drawn until colour_by names it.
        if item in self._surfaces:
            self.changed.emit(item)

    # ------------------------------------------------------------------------------ drawing
    def paint(self, target) -> None:
        """Draw the target's actor coloured by its current overlay, or put its plain colouring back."""
        surface = self._surfaces[target]
        mapper, mesh = surface.actor.mapper, surface.mesh
        overlay = self.overlays(target).get(self.colour_by(target))
        own_bar = None if isinstance(target, ShapeItem) else self._layers[target].layer.scalar_bar
        self._remove_bar(target)
        for key in [k for k in mesh.point_data.keys() if k.startswith(OVERLAY_ARRAY)]:
            mesh.point_data.remove(key)
        if overlay is None:
            if surface.plain is not None:
                surface.plain.restore(mapper, mesh)
                surface.plain = None
            _set_bar_visible(self.plotter, own_bar, self._visible(target))
            mesh.Modified()
            return
        if surface.plain is None:
            surface.plain = _Plain.of(mapper, mesh)
        categorical = _map_overlay(mapper, mesh, overlay)
        mesh.Modified()
        _set_bar_visible(self.plotter, own_bar, False)  # the overlay's bar stands in for the layer's own
        self._add_bar(target, overlay, mapper, categorical)
        self.show_bar(target, self._visible(target))

    def show_bar(self, target, visible: bool) -> None:
        """Show or hide the scalar bar of the overlay ``target`` is coloured by (with the target)."""
        _set_bar_visible(self.plotter, self.bar(target), visible)

    def show_layer_bars(self, layer: Layer) -> None:
        """Show a layer's scalar bar as the layer is: its own, or while an overlay colours it, the
        overlay's, which stands in for it (any layer; only the :data:`OVERLAY_LAYERS` take overlays)."""
        state = self._layers.get(layer.name)
        painted = state is not None and state.colour_by is not None
        _set_bar_visible(self.plotter, layer.scalar_bar, layer.visible and not painted)
        self.show_bar(layer.name, layer.visible)

    def _add_bar(self, target, overlay, mapper, categorical: bool) -> None:
        title = overlay_title(overlay)
        if title in self.plotter.scalar_bars:  # the same overlay on another shape: say whose bar this is
            title = f"{title} · {self.target_name(target)}"
        used = {s.slot for s in self._surfaces.values() if s.bar is not None}
        slot = min(set(range(len(used) + 1)) - used)
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
        surface = self._surfaces[target]
        surface.bar, surface.slot = title, slot

    def _remove_bar(self, target) -> None:
        surface = self._surfaces.get(target)
        if surface is None or surface.bar is None:
            return
        title, surface.bar = surface.bar, None
        if title in self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(title, render=False)
