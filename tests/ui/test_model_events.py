"""The view-models' per-property events: each change emits its own event once, and no other.

No display and no Qt: ``shapeot.ui.model`` is plain Python. The log records every event of an
item (and of a list) so a test sees both what was emitted and what was not.
"""
from __future__ import annotations

import numpy as np
import pytest
from shapeot.ui.model import ShapeEvents, ShapeItem, ShapeList

from shapeot.shapes import Overlay, Shape

PROPERTIES = ("visible", "colour", "opacity", "overlays", "colour_by")


def _tet(name="tet"):
    return Shape(np.eye(4, 3) * 10.0, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]), name=name)


def _record(events: ShapeEvents, log: list, tag: str = "") -> None:
    """Append (tag, property, item) to ``log`` for every event of ``events``."""
    for name in PROPERTIES:
        getattr(events, name).connect(lambda item, name=name: log.append((tag, name, item)))


def _thickness(value: float = 2.0, name: str = "lh.thickness") -> Overlay:
    return Overlay(name, np.full(4, value))


def test_the_events_group_has_one_event_per_property_in_a_fixed_order():
    events = ShapeEvents()
    assert list(events) == [getattr(events, name) for name in PROPERTIES]
    assert len({id(e) for e in events}) == len(PROPERTIES)
    assert not hasattr(ShapeItem(_tet()), "changed")  # the name-string event is gone
    assert not hasattr(ShapeList(), "changed")


@pytest.mark.parametrize("name, value", [("visible", False), ("colour", "#FF0000"), ("opacity", 0.25)])
def test_a_style_change_emits_its_own_event_once_and_no_other(name, value):
    item, log = ShapeItem(_tet()), []
    _record(item.events, log)
    setattr(item, name, value)
    assert log == [("", name, item)]
    setattr(item, name, value)  # the same value again: no change, no event
    assert log == [("", name, item)]


def test_a_value_written_back_unchanged_emits_nothing():
    item, log = ShapeItem(_tet(), colour="#56b4e9", opacity=0.5, visible=True), []
    _record(item.events, log)
    item.visible, item.colour, item.opacity, item.colour_by = True, "#56B4E9", 0.5, None
    assert log == []
    with pytest.raises(ValueError):
        item.opacity = 2.0  # refused: nothing stored, nothing emitted
    with pytest.raises(ValueError, match="no overlay"):
        item.colour_by = "lh.thickness"
    assert log == [] and item.opacity == 0.5 and item.colour_by is None


def test_overlay_changes_emit_overlays_and_colour_by_each_once():
    item, log = ShapeItem(_tet()), []
    _record(item.events, log)
    thickness = _thickness()
    item.add_overlay(thickness, show=False)  # loaded, not shown: only the overlays changed
    assert log == [("", "overlays", item)] and item.colour_by is None
    log.clear()
    item.colour_by = "lh.thickness"
    item.colour_by = "lh.thickness"
    assert log == [("", "colour_by", item)]
    log.clear()
    item.add_overlay(_thickness(3.0))  # a new version of the overlay shown: what is drawn changed
    assert log == [("", "overlays", item), ("", "colour_by", item)]
    log.clear()
    item.add_overlay(_thickness(name="lh.curv"), show=False)  # another one, not shown
    assert log == [("", "overlays", item)] and item.colour_by == "lh.thickness"
    log.clear()
    item.remove_overlay("lh.thickness")  # the one shown: back to the plain colour, then dropped
    assert log == [("", "colour_by", item), ("", "overlays", item)] and item.colour_by is None
    log.clear()
    item.remove_overlay("lh.curv")
    assert log == [("", "overlays", item)]


def test_the_list_forwards_every_item_event_and_stops_after_remove():
    shapes, log = ShapeList(), []
    _record(shapes.events, log, "list")
    a, b = shapes.add(_tet("a")), shapes.add(_tet("b"))
    assert log == []  # adding a shape is `added`, not a property event
    own = []
    _record(a.events, own, "item")
    a.visible, b.opacity, a.colour = False, 0.5, "#000000"
    a.add_overlay(_thickness())
    assert log == [("list", "visible", a), ("list", "opacity", b), ("list", "colour", a),
                   ("list", "overlays", a), ("list", "colour_by", a)]
    assert own == [("item", name, a) for name in ("visible", "colour", "overlays", "colour_by")]
    log.clear()
    shapes.remove(a)
    a.visible, a.opacity, a.colour, a.colour_by = True, 0.1, "#ffffff", None
    a.remove_overlay("lh.thickness")
    assert log == []  # a removed item is no longer forwarded, though its own events still fire
    assert [name for _, name, _ in own[4:]] == ["visible", "opacity", "colour", "colour_by", "overlays"]
    b.visible = False
    assert log == [("list", "visible", b)]
    shapes.clear()
    b.visible = True
    assert log == [("list", "visible", b)]
