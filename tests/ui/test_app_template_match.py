"""Match draws correspondence lines; Build template shows the template, its cohort and PCA modes."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtCore import Qt
from shapeot.ui.layers import MASS, MODE_AMPLITUDE

import shapeot


def test_match_draws_lines_coloured_by_transport_mass(window, qtbot, brain_files, gui):
    gui.run_until_idle(qtbot, window, lambda: window.open_paths(brain_files))
    window.params.setCurrentIndex(1)
    window.params.match_form.widget("scaling").setText("0.5")
    finished = []
    window.tasks.finished.connect(lambda name, result: finished.append(result))
    gui.run_until_idle(qtbot, window, lambda: qtbot.mouseClick(window.params.match_button, Qt.LeftButton))
    [result] = finished
    corr = result.correspondences
    lines = window.scene.layers["lines"]
    assert lines.visible and window.results_panel.checkboxes["lines"].isChecked()
    idx = lines.mesh.field_data["index"]
    np.testing.assert_allclose(lines.mesh.cell_data[MASS], corr.mass[idx])
    np.testing.assert_allclose(lines.mesh.points[len(idx):], corr.target_points[idx], atol=1e-6)
    assert MASS in window.plotter.scalar_bars
    assert (corr.mass > 0).all()
    rows = dict(window.metrics_table.rows())
    assert float(rows["Sinkhorn divergence S_eps (mm²)"]) == pytest.approx(float(corr.result.value), rel=1e-3)
    assert float(rows["OT displacement, mean (mm)"]) == pytest.approx(
        np.linalg.norm(corr.displacement, axis=1).mean(), rel=1e-3)
    assert window.shapes.source.opacity <= 0.3 and window.shapes.target.opacity <= 0.3  # lines show through
    assert "S_eps" in window.status.text()


def test_build_template_shows_progress_cohort_and_modes(window, qtbot, cohort_folder, tmp_path, gui):
    window.params.setCurrentIndex(2)
    form = window.params.template_form
    for name, value in {"iterations": 1, "procrustes_starts": 1, "procrustes_iterations": 1, "n_modes": 2,
                        "procrustes_points": 200, "medoid_points": 100}.items():
        form.widget(name).setValue(value)
    form.widget("compute_distances").setChecked(False)
    messages = []
    window.tasks.progress.connect(lambda f, m: messages.append((f, m)))
    finished = []
    window.tasks.finished.connect(lambda name, result: finished.append(result))
    gui.run_until_idle(qtbot, window, lambda: window.build_template(cohort_folder), timeout_s=180)
    [result] = finished
    tpl = result.template
    assert len(tpl.subjects) == 3 and [s.path.endswith("notes.txt") for s in result.skipped] == [True]
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) or max(fractions) == 1.0
    assert any("subject" in m.lower() for _, m in messages)  # progress per subject

    layers = window.scene.layers
    assert set(layers) == {"template", "cohort"}
    assert layers["cohort"].actors[0].prop.opacity < 0.5  # faded subjects around the template
    assert layers["cohort"].mesh.n_points == sum(s.n_points for s in tpl.subjects)
    np.testing.assert_allclose(layers["template"].mesh.points, tpl.modes.mean, atol=1e-9)
    panel = window.results_panel
    assert panel.mode_box.isVisibleTo(panel) and not panel.morph_box.isVisibleTo(panel)
    assert panel.mode_index.maximum() == tpl.modes.n_modes == 2
    panel.mode_slider.setValue(panel.mode_slider.maximum())  # +3 SD along mode 1
    sd = np.sqrt(tpl.modes.variances[0])
    np.testing.assert_allclose(layers["template"].mesh.points, tpl.modes.mean + 3 * sd * tpl.modes.components[0],
                               atol=1e-6)
    np.testing.assert_allclose(layers["template"].mesh.point_data[MODE_AMPLITUDE],
                               sd * np.linalg.norm(tpl.modes.components[0], axis=1))
    panel.mode_index.setValue(2)
    assert window.scene.mode == (1, 3.0)
    assert "mode 2" in panel.mode_label.text()

    import json

    out = tmp_path / "tpl"
    written = window.export("template", out)
    assert out / "template.vtp" in written and out / "modes" / "modes.json" in written
    mesh = shapeot.load(out / "template.vtp")
    np.testing.assert_allclose(mesh.points, tpl.shape.points, atol=1e-5)
    np.testing.assert_array_equal(mesh.faces, tpl.shape.faces)
    plus = shapeot.load(out / "modes" / "mode_01_plus2sd.vtp")
    np.testing.assert_allclose(plus.points, tpl.modes.shape_at(0, 2.0), atol=1e-5)
    np.testing.assert_allclose(plus.point_data["mode"], sd * tpl.modes.components[0], atol=1e-5)
    modes = json.loads((out / "modes" / "modes.json").read_text())
    np.testing.assert_allclose(modes["variances_mm2"], tpl.modes.variances)
    with pytest.raises(FileExistsError):
        window.export("template", out)
    with pytest.raises(ValueError, match="subjects' files"):
        window.export("template", cohort_folder, overwrite=True)
    rows = dict(window.metrics_table.rows())
    assert rows["subjects"] == "3" and rows["converged"] == ("yes" if tpl.converged else "no")
    share = float(rows["mode 1: share of the variance"])
    assert share == pytest.approx(tpl.modes.explained_variance_ratio[0], rel=1e-3)
    assert "template: move along the normals (mm)" in window.convergence.series
