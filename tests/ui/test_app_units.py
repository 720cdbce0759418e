"""Parts of the app that need no display: view-models, layer builders, tables, plots' data, forms' docs."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from shapeot.ui import layers
from shapeot.ui.model import PALETTE, ShapeList

from shapeot.shapes import Shape


def _tet(name="tet"):
    return Shape(np.eye(4, 3) * 10.0, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]), name=name)


def test_shape_list_roles_events_and_validation():
    shapes, log = ShapeList(), []
    shapes.added.connect(lambda item: log.append(("added", item.name)))
    shapes.removed.connect(lambda item: log.append(("removed", item.name)))
    for name in ("visible", "colour", "opacity", "overlays", "colour_by"):
        getattr(shapes.events, name).connect(lambda item, name=name: log.append(("changed", item.name, name)))
    shapes.roles_changed.connect(lambda: log.append(("roles",)))
    a, b, c = (shapes.add(_tet(n)) for n in "abc")
    assert (shapes.source, shapes.target) == (a, b) and c.colour == PALETTE[2]
    a.opacity = 0.5
    a.opacity = 0.5  # no change, no event
    a.visible = False
    a.colour = "#FF0000"
    assert a.colour == "#ff0000"
    with pytest.raises(ValueError, match="opacity must be between 0.0 and 1.0"):
        a.opacity = 1.5
    with pytest.raises(ValueError, match="colour"):
        a.colour = "red"
    shapes.remove(a)
    assert shapes.source is None and shapes.target is b
    with pytest.raises(ValueError, match="not in this list"):
        shapes.source = a
    assert log == [("added", "a"), ("roles",), ("added", "b"), ("roles",), ("added", "c"),
                   ("changed", "a", "opacity"), ("changed", "a", "visible"), ("changed", "a", "colour"),
                   ("removed", "a"), ("roles",)]
    a.opacity = 0.2  # a removed item no longer reports through the list
    assert log[-1] == ("roles",)


def test_builders():
    rng = np.random.default_rng(0)
    pts, disp = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    np.testing.assert_allclose(layers.displacement_magnitude(disp), np.sqrt((disp ** 2).sum(1)))
    np.testing.assert_allclose(layers.morph_points(pts, disp, 0.5), pts + 0.5 * disp)
    with pytest.raises(ValueError):
        layers.morph_points(pts, disp, 1.5)
    idx = layers.subsample(50, 10)
    assert len(set(idx)) == 10 and np.array_equal(idx, layers.subsample(50, 10)) and np.all(np.diff(idx) > 0)
    lines = layers.correspondence_lines(pts, pts + disp, np.arange(50.0), max_lines=10)
    assert lines.n_cells == 10 and lines.n_points == 20
    np.testing.assert_allclose(lines.cell_data[layers.MASS], idx)
    np.testing.assert_allclose(lines.points[10:] - lines.points[:10], disp[idx])
    arrows = layers.displacement_arrows(pts, disp, max_arrows=5)
    assert arrows.n_points > 0
    # an arrow is as long as its displacement: the glyphs span the points and their tips
    one = layers.displacement_arrows(np.zeros((1, 3)), np.array([[0.0, 0.0, 7.0]]))
    assert one.bounds[5] == pytest.approx(7.0) and one.bounds[4] == pytest.approx(0.0, abs=1e-6)
    mean, mode = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    np.testing.assert_allclose(layers.mode_points(mean, mode, 2.0, -1.5), mean - 3.0 * mode)


def test_history_series_and_metric_rows():
    from shapeot.ui.metrics_table import metric_rows
    from shapeot.ui.plots import history_series

    from shapeot.registration import HistoryEntry as H

    hist = [H("prealign", 0, 0.5, phase="search", start=0), H("prealign", 0, 0.6, phase="search", start=1),
            H("prealign", 0, 0.25, phase="refine", start=0), H("nonrigid", 0, 0.1, level=0),
            H("nonrigid", 0, 0.05, level=1), H("nonrigid", 1, float("nan"), level=1)]
    series = history_series(hist)
    assert list(series) == ["pre-alignment starts", "pre-alignment, best start", "non-rigid level 1",
                            "non-rigid level 2"]
    starts = series["pre-alignment starts"]
    assert starts.markers_only and list(starts.x) == [1, 2]  # the starts are markers, not one line
    assert list(series["non-rigid level 2"].x) == [5] and list(series["non-rigid level 2"].y) == [0.05]
    tpl = history_series([H("procrustes", 0, 9.0, extra={"change_mm": 2.0}),
                          H("procrustes", 1, 8.0, extra={"change_mm": 0.5}), H("template", 0, 1.5),
                          H("template", 1, 0.2)])
    # the template's iterations and the Procrustes rounds are their own series, each from 1, in mm
    assert list(tpl["Procrustes: largest change (mm)"].y) == [2.0, 0.5]
    assert list(tpl["template: move along the normals (mm)"].x) == [1, 2]
    rows = metric_rows({"before": {"chamfer_surface": 2.0, "hd95": 5.0},
                        "after": {"chamfer_surface": 0.51234, "hd95": 1.0, "folded": 3}})
    assert rows[0] == ("Chamfer, point-to-surface (mm)", "2", "0.5123")
    assert ("folded triangles", "", "3") in rows and ("HD95, point-to-point (mm)", "5", "1") in rows


def test_field_docs_come_from_the_library_docstrings():
    from shapeot.ui.params import MatchOptions, _kind, field_docs

    from shapeot.registration import PrealignConfig, RegistrationConfig

    assert field_docs(PrealignConfig)["starts"].startswith("Starting rotations tried")
    docs = field_docs(RegistrationConfig)
    assert "min_blur_spacings" in docs and docs["min_blur_spacings"] == docs["min_width_spacings"]
    assert field_docs(MatchOptions)["reach"].startswith("Reach in mm")
    assert [_kind(t) for t in ("int", "float | None", "tuple[float, ...]", "tuple[Level, ...]")] == \
        ["int", "float?", "floats", None]
    with pytest.raises(ValueError, match="scaling"):
        MatchOptions(scaling=1.5)


def test_command_line_parser_and_display_check(monkeypatch):
    from shapeot.ui.app import build_parser, display_available, main

    args = build_parser().parse_args(["a.gii", "b.gii", "--register", "--preset", "affine", "--screenshot", "o.png",
                                      "--exit"])
    assert args.files == ["a.gii", "b.gii"] and args.register and args.preset == "affine" and args.exit
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--register", "--match"])
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_available() is False
    assert main(["a.gii"]) == 2  # a clear message instead of Qt aborting the process


def test_mirror_flips_x_and_keeps_normals_outwards():
    from shapeot.ui.tasks import mirror_x

    from shapeot.shapes.geometry import signed_volume

    tet = _tet()
    m = mirror_x(tet)
    np.testing.assert_allclose(m.points, tet.points * [-1, 1, 1])
    assert signed_volume(m.points, m.faces) == pytest.approx(signed_volume(tet.points, tet.faces))
    assert m.name == "tet (mirrored)"
