"""The 3D view's contents: the opened shapes and the result layers, as pyvista actors.

:class:`Scene` keeps a plotter in step with a :class:`~shapeot.ui.model.ShapeList` (one actor per
shape, restyled from the model's per-property events) and holds the result layers
(:class:`~shapeot.ui.layers.Layer`), each with its own visibility, plus the morph slider and the
template's PCA modes. Overlays on shapes and on surface layers are drawn by the
:class:`~shapeot.ui.overlay_layers.OverlayPainter` the scene owns; the scene's overlay methods
hand over to it.

Everything here must run on the GUI thread (VTK is not thread-safe); pyvista is imported when a
method needs it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .layers import (
    ARROW_COLOUR,
    COHORT_COLOUR,
    MAGNITUDE,
    MASS,
    MODE_AMPLITUDE,
    NONRIGID,
    NORMAL,
    WARPED_COLOUR,
    Layer,
    correspondence_lines,
    displacement_arrows,
    displacement_magnitude,
    mode_points,
    morph_points,
    template_modes,
    template_shape,
)
from .model import Event, ShapeItem, ShapeList
from .overlay_layers import OverlayPainter

__all__ = ["Scene"]


class Scene:
    """Keeps a pyvista plotter in step with the opened shapes, and draws result layers.

    Parameters
    ----------
    plotter : pyvista.Plotter or pyvistaqt.QtInteractor
    shapes : ShapeList
        Observed: adding, removing or restyling a shape updates its actor.

    Attributes
    ----------
    layers : dict of str to Layer
        The result layers of the result shown, by name.
    overlay_painter : OverlayPainter
        Draws the overlays of the shapes and of the surface layers.

    Events
    ------
    layers_changed()
        The set of result layers changed (a new result replaced the old one).
    layer_visibility(name, visible)
    morph_changed(t)
    mode_changed(index, coefficient)
    overlays_changed(target)
        The overlays of a shape (:class:`ShapeItem`) or a layer (its name), or the one it is
        coloured by, changed (the painter's ``changed``).

    Overlays
    --------
    A *target* is a :class:`ShapeItem` or the name of one of the
    :data:`~shapeot.ui.layers.OVERLAY_LAYERS`. Either way the overlay colours the target's own
    actor, and its scalar bar is shown with it (see :mod:`shapeot.ui.overlay_layers`).
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
        # render=False: the painter redraws once, after the overlay is on the revealed layer.
        self.overlay_painter = OverlayPainter(plotter, shapes,
                                              reveal=lambda name: self.set_layer_visible(name, True, render=False))
        self.layers_changed, self.layer_visibility = Event(), Event()
        self.morph_changed, self.mode_changed = Event(), Event()
        self.overlays_changed = self.overlay_painter.changed
        shapes.added.connect(self._on_added)
        shapes.removed.connect(self._on_removed)
        shapes.events.visible.connect(self._on_visible)
        shapes.events.colour.connect(self._on_colour)
        shapes.events.opacity.connect(self._on_opacity)
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
        self.overlay_painter.add_shape(item, actor, mesh)
        if first:
            self.reset_camera()
        self.render()

    def _on_removed(self, item: ShapeItem) -> None:
        self.overlay_painter.remove(item)
        actor = self._shape_actors.pop(item, None)
        if actor is not None:
            self.plotter.remove_actor(actor, render=False)
        self.render()

    def _on_visible(self, item: ShapeItem) -> None:
        actor = self._shape_actors.get(item)
        if actor is not None:
            actor.SetVisibility(item.visible)
            self.overlay_painter.show_bar(item, item.visible)
            self.render()

    def _on_colour(self, item: ShapeItem) -> None:
        actor = self._shape_actors.get(item)
        if actor is not None:
            actor.prop.color = item.colour
            self.render()

    def _on_opacity(self, item: ShapeItem) -> None:
        actor = self._shape_actors.get(item)
        if actor is not None:
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
            self.overlay_painter.remove(name)
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
        self.overlay_painter.show_layer_bars(layer)
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
        self.overlay_painter.add_layer(layer)
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
    # The overlay API of the scene, kept here for its callers (the window, scripts, tests): the
    # painter does the work.
    def overlay_targets(self) -> list:
        """Everything an overlay can colour now: the shapes, then the present overlay layers."""
        return self.overlay_painter.targets()

    def target_name(self, target) -> str:
        """How a target is called in menus and messages ("lh_pial", "Warped source")."""
        return self.overlay_painter.target_name(target)

    def overlay_n_vertices(self, target) -> int:
        """Vertex count an overlay of ``target`` must have."""
        return self.overlay_painter.n_vertices(target)

    def overlays(self, target) -> dict:
        """The overlays loaded onto ``target`` (a ShapeItem or a layer name), by name."""
        return self.overlay_painter.overlays(target)

    def colour_by(self, target) -> str | None:
        """The overlay ``target`` is coloured by, or None (its plain colouring)."""
        return self.overlay_painter.colour_by(target)

    def add_overlay(self, target, overlay, *, show: bool = True) -> None:
        """Attach ``overlay`` to ``target`` and, with ``show``, colour it by it
        (:meth:`OverlayPainter.add_overlay <shapeot.ui.overlay_layers.OverlayPainter.add_overlay>`)."""
        self.overlay_painter.add_overlay(target, overlay, show=show)

    def set_colour_by(self, target, name: str | None) -> None:
        """Colour ``target`` by its overlay ``name``, or by its plain colouring (None)."""
        self.overlay_painter.set_colour_by(target, name)

    def overlay_actor(self, target):
        """The actor an overlay of ``target`` colours (the shape's or the layer's own)."""
        return self.overlay_painter.actor(target)

    def overlay_mesh(self, target):
        """The mesh the target's actor draws from (its point arrays hold the overlay shown)."""
        return self.overlay_painter.mesh(target)

    def overlay_bar(self, target) -> str | None:
        """Title of the scalar bar of the overlay ``target`` is coloured by, if any."""
        return self.overlay_painter.bar(target)

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
            # Coloured by an overlay, the range waits for the plain colouring.
            self.overlay_painter.set_plain_range("template", (0.0, max(float(amp.max()), 1e-9)))
        self._mode = (int(index), float(coefficient))
        self.mode_changed.emit(*self._mode)
        self.render()
