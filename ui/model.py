"""View-models of the desktop app: the shapes on screen, with no Qt and no VTK in sight.

Widgets and the 3D scene observe these objects and write to them; they keep no copy of the
values (napari's pattern: the model validates, stores, emits). Each model has one tiny
:class:`Event` per property, grouped in its ``events`` (``item.events.opacity.connect(fn)``), so
a list widget and the VTK scene stay in step whichever of them (or a test) changes a value, and
each observer connects to the properties it draws instead of sorting one event by name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["Event", "ShapeEvents", "ShapeItem", "ShapeList", "PALETTE"]

#: Colours given to shapes in the order they are opened (colour-blind friendly, Okabe-Ito).
PALETTE = ("#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#0072b2", "#d55e00", "#f0e442", "#999999")


class Event:
    """A list of callbacks: ``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(*args)`` on every :meth:`emit`."""
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` (no error if it was not connected)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call the connected callbacks in the order they were connected."""
        for cb in list(self._callbacks):
            cb(*args)


class ShapeEvents:
    """One :class:`Event` per property of a :class:`ShapeItem`; each emits the item.

    Attributes
    ----------
    visible, colour, opacity, overlays, colour_by : Event
        ``emit(item)`` after that property of ``item`` changed.
    """

    __slots__ = ("visible", "colour", "opacity", "overlays", "colour_by")

    def __init__(self) -> None:
        self.visible, self.colour, self.opacity = Event(), Event(), Event()
        self.overlays, self.colour_by = Event(), Event()

    def __iter__(self) -> Iterator[Event]:
        """The events in a fixed order: two groups zipped pair each event with its namesake."""
        return iter((self.visible, self.colour, self.opacity, self.overlays, self.colour_by))


def _check_colour(colour: str) -> str:
    c = str(colour)
    if not (c.startswith("#") and len(c) == 7 and all(ch in "0123456789abcdefABCDEF" for ch in c[1:])):
        raise ValueError(f"colour must be '#rrggbb'; got {colour!r}")
    return c.lower()


class ShapeItem:
    """One shape in the scene: a :class:`shapeot.Shape` and how it is drawn.

    Parameters
    ----------
    shape : shapeot.Shape
        The data (never modified: Shapes are immutable).
    colour : str, default: "#e69f00"
        '#rrggbb'.
    opacity : float, default: 1.0
        In [0, 1].
    visible : bool, default: True

    Attributes
    ----------
    overlays : mapping of str to shapeot.shapes.Overlay
        Per-vertex data loaded onto the shape (thickness, curvature, a parcellation, ...), by name,
        in the order they were loaded.
    colour_by : str or None
        The overlay the shape is coloured by, or None for its plain colour.
    events : ShapeEvents
        One event per property, each emitting this item once its value changed (never when a
        value is set to what it already was).

    Events
    ------
    events.visible(item), events.colour(item), events.opacity(item)
        After that property changed.
    events.overlays(item)
        After an overlay was added, replaced or removed.
    events.colour_by(item)
        After ``colour_by`` changed; also when the overlay it names was replaced by a new one
        of the same name, since what is drawn changed.
    """

    def __init__(self, shape, *, colour: str = PALETTE[0], opacity: float = 1.0, visible: bool = True) -> None:
        self.shape = shape
        self._colour = _check_colour(colour)
        self._opacity = self._check_opacity(opacity)
        self._visible = bool(visible)
        self._overlays: dict[str, Any] = {}
        self._colour_by: str | None = None
        self.events = ShapeEvents()

    @staticmethod
    def _check_opacity(value: float) -> float:
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"opacity must be between 0.0 and 1.0; got {value}")
        return v

    @property
    def name(self) -> str:
        """The shape's display name."""
        return self.shape.name or "shape"

    @property
    def visible(self) -> bool:
        """Whether the shape is drawn."""
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        if bool(value) != self._visible:
            self._visible = bool(value)
            self.events.visible.emit(self)

    @property
    def colour(self) -> str:
        """Surface colour, '#rrggbb'."""
        return self._colour

    @colour.setter
    def colour(self, value: str) -> None:
        c = _check_colour(value)
        if c != self._colour:
            self._colour = c
            self.events.colour.emit(self)

    @property
    def opacity(self) -> float:
        """Opacity in [0, 1]."""
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        v = self._check_opacity(value)
        if v != self._opacity:
            self._opacity = v
            self.events.opacity.emit(self)

    @property
    def overlays(self) -> Mapping[str, Any]:
        """The overlays of the shape by name (read-only: use :meth:`add_overlay`)."""
        return MappingProxyType(self._overlays)

    def add_overlay(self, overlay, *, show: bool = True) -> None:
        """Attach an overlay (replacing one of the same name) and, with ``show``, colour by it.

        Raises
        ------
        shapeot.shapes.errors.ShapeFileError
            When the overlay has not one value per vertex of the shape (a ValueError: the
            message names the file and both counts).
        """
        overlay.check_vertices(self.shape.n_points)
        replaced = overlay.name in self._overlays
        self._overlays[overlay.name] = overlay
        self.events.overlays.emit(self)
        if show and self._colour_by != overlay.name:
            self.colour_by = overlay.name
        elif replaced and self._colour_by == overlay.name:
            self.events.colour_by.emit(self)

    def remove_overlay(self, name: str) -> None:
        """Drop an overlay (back to the plain colour if the shape was coloured by it)."""
        if name not in self._overlays:
            raise KeyError(f"{self.name} has no overlay {name!r}; it has {list(self._overlays)}")
        if self._colour_by == name:
            self.colour_by = None
        del self._overlays[name]
        self.events.overlays.emit(self)

    @property
    def colour_by(self) -> str | None:
        """Name of the overlay the shape is coloured by; None: the plain :attr:`colour`."""
        return self._colour_by

    @colour_by.setter
    def colour_by(self, name: str | None) -> None:
        if name is not None and name not in self._overlays:
            raise ValueError(f"{self.name} has no overlay {name!r}; it has {list(self._overlays)}")
        if name != self._colour_by:
            self._colour_by = name
            self.events.colour_by.emit(self)

    def __repr__(self) -> str:
        return f"ShapeItem({self.name!r}, visible={self.visible}, colour={self.colour}, opacity={self.opacity})"


class ShapeList:
    """The shapes opened in the app, and which of them are the registration's source and target.

    Attributes
    ----------
    events : ShapeEvents
        The per-property events of every item in the list, forwarded (``emit(item)``): connect
        once here rather than to each item. An item removed from the list is no longer forwarded.

    Events
    ------
    added(item), removed(item)
        After a shape was appended / removed.
    events.visible(item), events.colour(item), events.opacity(item), events.overlays(item),
    events.colour_by(item)
        Forwarded from the item (see :class:`ShapeItem`).
    roles_changed()
        After ``source`` or ``target`` changed (also when the shape holding a role is removed).
    """

    def __init__(self) -> None:
        self._items: list[ShapeItem] = []
        self._source: ShapeItem | None = None
        self._target: ShapeItem | None = None
        self.added, self.removed, self.roles_changed = Event(), Event(), Event()
        self.events = ShapeEvents()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[ShapeItem]:
        return iter(list(self._items))

    def __getitem__(self, index: int) -> ShapeItem:
        return self._items[index]

    def index(self, item: ShapeItem) -> int:
        """Position of ``item`` in the list (ValueError if absent)."""
        return self._items.index(item)

    def add(self, shape, *, colour: str | None = None, opacity: float = 1.0, visible: bool = True) -> ShapeItem:
        """Append a shape; the first two shapes become the source and the target.

        Parameters
        ----------
        shape : shapeot.Shape
        colour : str, optional
            '#rrggbb'; by default the next colour of :data:`PALETTE`.
        opacity : float, default: 1.0
        visible : bool, default: True

        Returns
        -------
        ShapeItem
        """
        if colour is None:
            colour = PALETTE[len(self._items) % len(PALETTE)]
        item = ShapeItem(shape, colour=colour, opacity=opacity, visible=visible)
        for own, forwarded in zip(item.events, self.events, strict=True):
            own.connect(forwarded.emit)
        self._items.append(item)
        self.added.emit(item)
        if self._source is None:
            self.source = item
        elif self._target is None:
            self.target = item
        return item

    def remove(self, item: ShapeItem) -> None:
        """Remove a shape (and its role, if it was the source or the target)."""
        self._items.remove(item)
        for own, forwarded in zip(item.events, self.events, strict=True):
            own.disconnect(forwarded.emit)
        roles = False
        if item is self._source:
            self._source, roles = None, True
        if item is self._target:
            self._target, roles = None, True
        self.removed.emit(item)
        if roles:
            self.roles_changed.emit()

    def clear(self) -> None:
        """Remove every shape."""
        for item in list(self._items):
            self.remove(item)

    def _check_member(self, item: ShapeItem | None) -> ShapeItem | None:
        if item is not None and item not in self._items:
            raise ValueError(f"{item!r} is not in this list")
        return item

    @property
    def source(self) -> ShapeItem | None:
        """The shape that is moved by Register / Match (None: not chosen)."""
        return self._source

    @source.setter
    def source(self, item: ShapeItem | None) -> None:
        if self._check_member(item) is not self._source:
            self._source = item
            self.roles_changed.emit()

    @property
    def target(self) -> ShapeItem | None:
        """The shape the source is registered onto (None: not chosen)."""
        return self._target

    @target.setter
    def target(self, item: ShapeItem | None) -> None:
        if self._check_member(item) is not self._target:
            self._target = item
            self.roles_changed.emit()
