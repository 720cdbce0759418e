"""The app at native resolution (issue 15): two 41k-vertex hemispheres (the sample Loop-subdivided
once). Register reports progress all along and the result layers render the full meshes; Cancel
stops the run. How fast (event-loop gaps, progress gaps, Cancel latency) is measured by
benchmarks/app_responsiveness.py, not asserted here (issue 24: no wall-clock bound in a test)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtCore import Qt


@pytest.fixture(scope="module")
def native_files(tmp_path_factory):
    import trimesh

    import shapeot
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import warp_pair

    folder = tmp_path_factory.mktemp("native")
    lh = shapeot.load(SAMPLES / "fsaverage5_lh_pial.gii")
    pts, faces = trimesh.remesh.subdivide_loop(np.asarray(lh.points), np.asarray(lh.faces))
    source = Shape(pts, faces, units="mm", name="lh x1")
    target = warp_pair(source, seed=2, resample=False).target
    paths = folder / "lh_41k.vtp", folder / "lh_41k_warped.vtp"
    source.save(paths[0])
    target.replace(name="warped").save(paths[1])
    return paths


from conftest import SAMPLES  # noqa: E402 - tests/ui is not a package


@pytest.mark.slow
def test_native_surfaces_register_with_steady_progress_and_render_in_full(window, qtbot, monkeypatch, native_files,
                                                                          gui):
    gui.open_by_menu(qtbot, window, monkeypatch, native_files)
    assert [item.shape.n_points for item in window.shapes] == [40962, 40962]
    gui.set_fast_register(window, "rigid", {"prealign.starts": 1, "prealign.iterations": 3})
    reports = []
    window.tasks.progress.connect(lambda f, m: reports.append((f, m)))
    gui.run_until_idle(qtbot, window, lambda: qtbot.mouseClick(window.params.register_button, Qt.LeftButton), 1800)
    # the worker reported all along: many times, through every part of the run, on one monotone bar
    fractions = [f for f, _ in reports]
    assert len(reports) >= 20, reports
    assert all(b >= a for a, b in zip(fractions, fractions[1:])), fractions
    assert fractions[0] < 0.05 and fractions[-1] == pytest.approx(1.0)
    messages = {m for _, m in reports}
    assert any(m.startswith("pre-alignment") for m in messages) and "measuring" in messages and "done" in messages
    kind, reg = window.result
    assert kind == "registration" and reg.warped.n_points == 40962
    layer = window.scene.layers["magnitude"]
    assert layer.mesh.n_points == 40962 and layer.mesh.n_cells == len(reg.source.faces)
    magnitude = np.linalg.norm(reg.displacement, axis=1)
    assert np.allclose(np.asarray(layer.mesh.point_data[layer.mesh.active_scalars_name]), magnitude)


@pytest.mark.slow
def test_cancel_at_native_resolution_stops_the_run(window, qtbot, monkeypatch, native_files, gui):
    gui.open_by_menu(qtbot, window, monkeypatch, native_files)
    gui.set_fast_register(window, "nonrigid", {"prealign.starts": 4, "prealign.iterations": 20})
    fractions = []
    window.tasks.progress.connect(lambda f, m: fractions.append(f))
    qtbot.mouseClick(window.params.register_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(fractions) and max(fractions) > 0.05, timeout=600_000)
    assert window.tasks.busy and window.cancel_button.isEnabled()
    # the timeout only guards against a hang: how soon Cancel acts is the benchmark's business
    with qtbot.waitSignal(window.tasks.cancelled, timeout=120_000) as blocker:
        qtbot.mouseClick(window.cancel_button, Qt.LeftButton)
    name, seconds = blocker.args
    assert name == "register" and seconds >= 0.0
    reported = len(fractions)
    assert not window.tasks.busy  # the worker is gone when the signal arrives
    qtbot.wait(200)
    assert len(fractions) == reported  # nothing reported after the stop
    assert max(fractions) < 0.5  # stopped early, far from the end of the run
    assert window.result is None and window.errors == [] and window.scene.layers == {}
    assert "cancelled" in window.status.text() and not window.cancel_button.isEnabled()
