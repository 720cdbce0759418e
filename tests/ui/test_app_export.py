"""Exports write files that load back; screenshots show the shapes; nothing is half-written."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtGui import QImage

import shapeot


def _hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_registration_exports_load_back(window, quick_registration, tmp_path, monkeypatch):
    reg = quick_registration
    window._registered(reg)
    out = tmp_path / "out"

    [warped] = window.export("warped", out / "warped.vtp")
    back = shapeot.load(warped)
    np.testing.assert_allclose(back.points, reg.warped.points, atol=1e-5)
    np.testing.assert_array_equal(back.faces, reg.source.faces)
    np.testing.assert_allclose(back.point_data["displacement"], reg.displacement, atol=1e-5)

    [csv] = window.export("displacement", out / "displacement.csv")
    # the one displacement layout of every front end: the app's file is the command line's
    from shapeot.registration.write import DISPLACEMENT_COLUMNS

    assert csv.read_text().splitlines()[0] == ",".join(DISPLACEMENT_COLUMNS)
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(reg.source.n_points))
    np.testing.assert_allclose(rows[:, 1:4], reg.displacement, atol=1e-5)
    np.testing.assert_allclose(rows[:, 4:7], reg.nonrigid_displacement, atol=1e-9)
    np.testing.assert_allclose(rows[:, 7], reg.normal_displacement, atol=1e-9)
    from shapeot.registration.write import write_displacement_csv

    write_displacement_csv(out / "as_the_cli_writes.csv", reg.source, reg.displacement, reg.prealign)
    assert (out / "as_the_cli_writes.csv").read_text() == csv.read_text()
    [field] = window.export("displacement", out / "displacement.vtp")
    back = shapeot.load(field)
    np.testing.assert_allclose(back.points, reg.source.points, atol=1e-5)
    np.testing.assert_allclose(back.point_data["displacement"], reg.displacement, atol=1e-5)

    [corr] = window.export("correspondences", out / "corr.csv")
    rows = np.loadtxt(corr, delimiter=",", skiprows=1)
    assert rows.shape == (reg.source.n_points, 6)
    np.testing.assert_allclose(rows[:, 1:4], reg.correspondences.target_points, atol=1e-5)
    np.testing.assert_array_equal(rows[:, 4], reg.correspondences.target_index)

    written = window.export("registration", out / "all" / "lh_registered.ply")
    assert sorted(p.name for p in written) == sorted(["lh_registered.ply", "lh_registered_displacement.csv",
                                                      "lh_registered_correspondences.csv", "lh_registered_prealign.txt",
                                                      "lh_registered_summary.json"])
    np.testing.assert_allclose(np.loadtxt(out / "all" / "lh_registered_prealign.txt"), reg.prealign, atol=1e-8)
    np.testing.assert_allclose(shapeot.load(written[0]).points, reg.warped.points, atol=1e-4)
    assert _hidden(out) == [] and _hidden(out / "all") == []  # no temporary left behind

    # an input is never overwritten; a template export needs a template
    source_path = reg.source.source.path
    window.shapes.add(reg.source)
    with pytest.raises(ValueError, match="input"):
        window.export("warped", source_path)
    with pytest.raises(ValueError, match="template"):
        window.export("template", out / "t.vtp")
    # a failing writer (unknown extension) leaves nothing, and the menu path shows the error
    from PyQt5.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out / "w.xyz"), "")))
    window.actions_by_name["export_warped"].trigger()
    assert window.errors and window.errors[-1][0] == "Export warped failed"
    assert not (out / "w.xyz").exists() and _hidden(out) == []


def test_screenshots_show_the_shapes(window, qtbot, quick_registration, tmp_path, gui):
    reg = quick_registration
    window.shapes.add(reg.source)
    window.shapes.add(reg.target)
    window._registered(reg)
    qtbot.wait(200)
    png = window.save_screenshot(tmp_path / "window.png")
    image = QImage(str(png))
    assert not image.isNull()
    assert (image.width(), image.height()) == (window.width(), window.height())
    pixels = gui.image_array(image)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 1000, len(colours)

    # the 3D view's part of the screenshot differs from the empty view where the brains are
    pos = window.plotter.mapTo(window, window.plotter.rect().topLeft())
    view = pixels[pos.y(): pos.y() + window.plotter.height(), pos.x(): pos.x() + window.plotter.width()]
    for item in window.shapes:
        item.visible = False
    for name in list(window.scene.layers):
        window.scene.set_layer_visible(name, False)
    empty = gui.image_array(window.grab_image(whole_window=False))
    assert empty.shape == view.shape
    covered = (np.abs(view.astype(int) - empty).max(axis=2) > 30).mean()
    assert 0.05 < covered < 0.95, covered
    # the colour map is there: saturated yellow-green-purple pixels that the background lacks
    saturation = view.max(axis=2).astype(int) - view.min(axis=2)
    saturation_empty = empty.max(axis=2).astype(int) - empty.min(axis=2)
    assert (saturation > 60).mean() > 0.03 and (saturation_empty > 60).mean() < 0.005


def test_a_source_overlay_is_written_on_the_targets_vertices(window, qtbot, gui, quick_registration, tmp_path):
    """File ▸ Export ▸ Overlay: the source's overlay carried onto the target, the values
    `shapeot transfer` gives (the same function), in the file's own format; the target can then
    be coloured by it."""
    import nibabel.freesurfer as fs

    from shapeot.registration.transfer import transfer_with_map
    from shapeot.shapes.overlays import Overlay

    reg = quick_registration
    src = window.shapes.add(reg.source)
    tgt = window.shapes.add(reg.target)
    window.shapes.source, window.shapes.target = src, tgt
    values = np.asarray(reg.source.points)[:, 2] / 10.0  # a smooth function of position, mm
    src.add_overlay(Overlay("lh.height", values, "continuous", format="morph"))
    window._registered(reg)
    assert window.actions_by_name["export_overlay"].isEnabled()
    gui.run_until_idle(qtbot, window, lambda: window.export_overlay("lh.height", tmp_path / "lh.height_on_target"))
    written = fs.read_morph_data(str(tmp_path / "lh.height_on_target"))
    expected = transfer_with_map(src.overlays["lh.height"], reg.source, reg.target, reg.deformation).values
    assert len(written) == reg.target.n_points
    np.testing.assert_allclose(written, expected, rtol=1e-6)  # float32 file
    assert "lh.height" in tgt.overlays
    # an unknown overlay is a message, not a crash, and writes nothing
    window.export_overlay("lh.nothing", tmp_path / "lh.nothing")
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10_000)
    assert "no overlay 'lh.nothing'" in window.errors[-1][1] and not (tmp_path / "lh.nothing").exists()
    window.errors.clear()
