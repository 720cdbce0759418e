"""Cancel stops the worker early and changes nothing; bad inputs show an error and the app stays
usable. (How soon Cancel acts is measured by benchmarks/app_responsiveness.py, not asserted here.)"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtCore import QMimeData, QPoint, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDropEvent
from PyQt5.QtWidgets import QMessageBox


def test_cancel_stops_a_long_registration_early(window, qtbot, monkeypatch, brain_files, gui):
    gui.open_by_menu(qtbot, window, monkeypatch, brain_files)
    # 24 starting rotations and many refinement rounds: far longer than the test waits.
    gui.set_fast_register(window, values={"prealign.starts": 24, "prealign.iterations": 90})
    fractions = []
    window.tasks.progress.connect(lambda f, m: fractions.append(f))
    qtbot.mouseClick(window.params.register_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(fractions) >= 3, timeout=60_000)
    assert window.tasks.busy and window.cancel_button.isEnabled()
    # the timeout only guards against a hang: how soon Cancel acts is the benchmark's business
    with qtbot.waitSignal(window.tasks.cancelled, timeout=60_000) as blocker:
        qtbot.mouseClick(window.cancel_button, Qt.LeftButton)
    name, seconds = blocker.args
    assert name == "register" and seconds >= 0.0
    assert not window.tasks.busy  # the worker is gone when the signal arrives
    reported = len(fractions)
    qtbot.wait(100)
    assert len(fractions) == reported  # nothing reported after the stop
    assert max(fractions) < 0.5  # it really was stopped early
    # nothing changed: no result, no layers, shapes untouched; the app takes the next action
    assert window.result is None and window.scene.layers == {}
    assert window.errors == [] and "cancelled" in window.status.text()
    assert all(item.visible for item in window.shapes)
    assert window.params.register_button.isEnabled() and not window.cancel_button.isEnabled()
    window.params.setCurrentIndex(1)
    gui.run_until_idle(qtbot, window, lambda: qtbot.mouseClick(window.params.match_button, Qt.LeftButton))
    assert window.result[0] == "match"


def _error_boxes(window):
    return [b for b in window.findChildren(QMessageBox) if b.isVisible()]


def test_bad_file_shows_an_error_dialog_and_the_app_stays_usable(window, qtbot, tmp_path, brain_files):
    bad = tmp_path / "broken.gii"
    bad.write_text("<?xml version='1.0'?><GIFTI><DataArray>not a surface")
    with qtbot.waitSignal(window.error_shown, timeout=30_000) as blocker:
        window.open_paths([bad])
    title, message = blocker.args
    assert title == "Open failed" and "broken.gii" in message
    [box] = _error_boxes(window)  # non-modal: the test (and the user) go on
    assert "broken.gii" in box.text() and box.icon() == QMessageBox.Critical
    box.close()
    qtbot.waitUntil(lambda: not _error_boxes(window))

    # a missing file and an unsupported format: one dialog each, the queue goes on
    with qtbot.waitSignal(window.tasks.idle, timeout=30_000):
        window.open_paths([tmp_path / "missing.vtp", tmp_path / "notes.xyz", brain_files[0]])
    messages = [m for _, m in window.errors]
    assert any("missing.vtp" in m and "no such file" in m for m in messages)
    assert any("notes.xyz" in m and "unsupported" in m for m in messages)
    assert len(_error_boxes(window)) == 2
    for box in _error_boxes(window):
        box.close()
    assert [item.name for item in window.shapes] == ["lh_pial.vtp"]  # the good file still opened


def test_missing_label_and_failed_solve_are_reported(window, qtbot, brain_files, gui, label_map):
    from shapeot.ui.tasks import mirror_x

    with qtbot.waitSignal(window.tasks.idle, timeout=60_000):
        window.open_paths([label_map], label=99)
    [(title, message)] = window.errors
    assert title == "Open failed" and "99" in message and "labels present" in message
    # Register with an impossible parameter: the library's ValueError is shown, nothing runs.
    window.open_paths(brain_files)
    qtbot.waitUntil(lambda: not window.tasks.busy and len(window.shapes) == 2, timeout=30_000)
    gui.set_fast_register(window, values={"prealign.starts": 99})
    with qtbot.waitSignal(window.error_shown, timeout=10_000) as blocker:
        qtbot.mouseClick(window.params.register_button, Qt.LeftButton)
    assert "prealign.starts" in blocker.args[1]
    # A solve that fails inside the worker (source and target in different units).
    other = window.shapes.target.shape
    window.shapes.target = window._loaded(mirror_x(other).replace(units="cm"))
    gui.set_fast_register(window)
    with qtbot.waitSignal(window.error_shown, timeout=60_000) as blocker:
        qtbot.mouseClick(window.params.register_button, Qt.LeftButton)
    assert blocker.args[0] == "Register failed" and "cm" in blocker.args[1]
    for box in _error_boxes(window):
        box.close()
    assert window.result is None and not window.tasks.busy


def test_scan_asks_for_a_label_dropped_files_open(window, qtbot, label_map):
    asked = []

    def chooser(parent, path, labels):
        asked.append((path, [lab.value for lab in labels]))
        return labels[-1].value

    window.label_chooser = chooser
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(label_map))])
    enter = QDragEnterEvent(QPoint(400, 300), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPoint(400, 300), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.tasks.idle, timeout=60_000):
        window.dropEvent(drop)
    assert window.errors == []
    [(path, values)] = asked
    assert path.endswith("mni152_tissue_labels_2mm.nii.gz") and len(values) >= 2
    [item] = window.shapes
    assert item.name.endswith(f"[{values[-1]}]") and item.shape.n_points > 100
    assert np.isfinite(item.shape.points).all()
    # a chooser that is cancelled opens nothing and says so
    window.label_chooser = lambda *a: None
    with qtbot.waitSignal(window.tasks.idle, timeout=60_000):
        window.open_paths([label_map])
    assert len(window.shapes) == 1 and "no label chosen" in window.status.text()


def test_closing_the_window_during_a_run_stops_the_worker(window, qtbot, monkeypatch, brain_files, gui):
    gui.open_by_menu(qtbot, window, monkeypatch, brain_files)
    gui.set_fast_register(window, values={"prealign.starts": 24, "prealign.iterations": 90})
    fractions = []
    window.tasks.progress.connect(lambda f, m: fractions.append(f))
    window.register()
    qtbot.waitUntil(lambda: len(fractions) >= 2, timeout=60_000)
    window.close()
    assert not window.tasks.busy  # stopped (and its thread joined) by the time close() returns
    qtbot.wait(100)  # late signals, if any, reach no layer of the closed window
    assert window.result is None
