"""Register two brains through the window: menu, Register button, worker thread, result layers."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtCore import Qt
from shapeot.ui.layers import MAGNITUDE, MASS, NONRIGID, NORMAL


def test_register_by_clicks_draws_layers_with_the_displacement_magnitudes(window, qtbot, monkeypatch, brain_files, gui):
    gui.open_by_menu(qtbot, window, monkeypatch, brain_files)
    assert [item.name for item in window.shapes] == ["lh_pial.vtp", "rh_pial_mirrored.vtp"]
    assert window.shapes.source is window.shapes[0] and window.shapes.target is window.shapes[1]
    assert window.params.register_button.isEnabled()

    gui.set_fast_register(window)
    progress = []
    window.tasks.progress.connect(lambda f, m: progress.append((f, m)))
    finished = []
    window.tasks.finished.connect(lambda name, result: finished.append((name, result)))
    gui.run_until_idle(qtbot, window, lambda: qtbot.mouseClick(window.params.register_button, Qt.LeftButton))
    [(name, reg)] = finished
    assert name == "register"
    assert reg.config.preset == "rigid" and reg.config.prealign.starts == 2  # the advanced panel was used
    assert progress and progress[-1][0] == 1.0
    assert window.result == ("registration", reg)

    layers = window.scene.layers
    assert set(layers) == {"warped", "magnitude", "nonrigid", "normal", "lines", "arrows"}
    # the shape change without the pose, and its signed normal part
    np.testing.assert_allclose(layers["nonrigid"].mesh.point_data[NONRIGID],
                               np.linalg.norm(reg.nonrigid_displacement, axis=1), rtol=1e-12)
    np.testing.assert_allclose(layers["normal"].mesh.point_data[NORMAL], reg.normal_displacement, rtol=1e-12)
    # The colour map shows |displacement| of the registration, vertex by vertex.
    expected = np.linalg.norm(reg.displacement, axis=1)
    np.testing.assert_allclose(layers["magnitude"].mesh.point_data[MAGNITUDE], expected, rtol=1e-12)
    mapper = layers["magnitude"].actors[0].GetMapper()
    drawn = mapper.GetInput().GetPointData().GetArray(MAGNITUDE)
    np.testing.assert_allclose([drawn.GetValue(i) for i in range(drawn.GetNumberOfTuples())], expected, rtol=1e-12)
    assert mapper.GetScalarVisibility()
    assert "displacement (mm)" in window.plotter.scalar_bars
    # the warped layer sits at source + displacement, with the source's faces
    np.testing.assert_allclose(layers["warped"].mesh.points, reg.warped.points, atol=1e-6)
    assert layers["warped"].mesh.n_cells == len(reg.source.faces)
    # correspondence lines: a subsample, each from a source vertex to its matched point, coloured by mass
    lines = layers["lines"].mesh
    idx = lines.field_data["index"]
    k = len(idx)
    assert k == min(400, reg.source.n_points) and lines.n_cells == k
    np.testing.assert_allclose(lines.points[:k], reg.source.points[idx], atol=1e-6)
    np.testing.assert_allclose(lines.points[k:], reg.correspondences.target_points[idx], atol=1e-6)
    np.testing.assert_allclose(lines.cell_data[MASS], reg.correspondences.mass[idx])
    assert layers["arrows"].mesh.n_points > 0

    # metrics table (before/after) and convergence plot
    rows = {r[0]: r for r in window.metrics_table.rows()}
    chamfer = rows["Chamfer, point-to-surface (mm)"]
    assert float(chamfer[2]) == pytest.approx(reg.metrics["after"]["chamfer_surface"], rel=1e-3)
    assert float(chamfer[2]) < float(chamfer[1])
    series = window.convergence.series
    assert "pre-alignment starts" in series and series["pre-alignment starts"].markers_only
    assert sum(len(s.y) for s in series.values()) == len(reg.history)

    # source hidden, target faded: the warped source is overlaid on the target
    assert not window.shapes.source.visible and window.shapes.target.opacity <= 0.35


def test_layer_toggles_and_morph_slider_follow_the_scene_both_ways(window, qtbot, quick_registration):
    reg = quick_registration
    window._registered(reg)  # what the worker's result does
    panel = window.results_panel
    for name, layer in window.scene.layers.items():
        box = panel.checkboxes[name]
        assert box.isChecked() == layer.visible
        box.setChecked(not layer.visible)  # check box -> scene
        assert layer.actors[0].GetVisibility() == box.isChecked() == layer.visible
        window.scene.set_layer_visible(name, not layer.visible)  # scene -> check box
        assert box.isChecked() == layer.visible
    window.scene.set_layer_visible("magnitude", False)  # the scalar bar goes with its layer
    assert not window.plotter.scalar_bars["displacement (mm)"].GetVisibility()
    assert not panel.checkboxes["magnitude"].isChecked()
    panel.checkboxes["magnitude"].setChecked(True)
    assert window.plotter.scalar_bars["displacement (mm)"].GetVisibility()

    panel.morph.setValue(25)  # slider -> scene
    expected = reg.source.points + 0.25 * reg.displacement
    for name in ("warped", "magnitude"):
        np.testing.assert_allclose(window.scene.layers[name].mesh.points, expected, atol=1e-6)
    window.scene.set_morph(0.0)  # scene -> slider
    assert panel.morph.value() == 0
    np.testing.assert_allclose(window.scene.layers["warped"].mesh.points, reg.source.points, atol=1e-6)
