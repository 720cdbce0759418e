"""Fixtures of the desktop-app tests (pytest-qt under the Xvfb that pytest-xvfb starts).

GUI tests need an X server: pyvistaqt's QtInteractor cannot render with
QT_QPA_PLATFORM=offscreen. pytest-xvfb starts Xvfb for the session when it is installed
(``scripts/bootstrap.sh`` installs it on Debian/Ubuntu); only when no X server can be reached
are the GUI tests skipped, with the reason. ``SHAPEOT_REQUIRE_GUI_TESTS=1`` turns that skip
into an error (for CI). Tests that need no display (models, builders) always run.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"
N_POINTS = 1000  # decimated brains: a registration takes seconds on two cores


GUI_MISSING = "the desktop app needs PyQt5, pyvista and pyvistaqt: pip install 'shapeot[gui]'"


def _display_reason() -> str | None:
    from shapeot.ui.app import display_available

    if display_available():
        return None
    return ("no X server could be reached (DISPLAY=%r): install Xvfb (apt-get install xvfb; pytest-xvfb then "
            "starts it) or set DISPLAY" % os.environ.get("DISPLAY"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op torch thread during these tests: on a shared 2-core machine, OpenMP threads
    spinning against other processes made registrations 3x slower and their time erratic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def display() -> None:
    """Skip (or fail under SHAPEOT_REQUIRE_GUI_TESTS=1) when no X server is available."""
    try:
        import pyvistaqt  # noqa: F401
        from PyQt5 import QtWidgets  # noqa: F401
    except ImportError:
        reason = GUI_MISSING
    else:
        reason = _display_reason()
    if reason is not None:
        if os.environ.get("SHAPEOT_REQUIRE_GUI_TESTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def label_map() -> Path:
    """The sample segmented scan (MNI152 tissue labels, 2 mm): several labels."""
    return SAMPLES / "mni152_tissue_labels_2mm.nii.gz"


@pytest.fixture
def settings_file(tmp_path) -> Path:
    """An INI file for the app's settings (the user's are never touched)."""
    return tmp_path / "settings.ini"


@pytest.fixture
def make_window(display, qtbot, settings_file):
    """Factory of main windows; every window (and its VTK view) is closed at teardown."""
    from shapeot.ui.settings import Settings
    from shapeot.ui.window import MainWindow

    windows = []

    def make(**kwargs):
        w = MainWindow(Settings(settings_file), **kwargs)
        windows.append(w)
        w.resize(1200, 760)
        w.show()
        qtbot.waitExposed(w)
        return w

    yield make
    for w in windows:
        w.tasks.shutdown(30.0)
        w.close()  # closes the QtInteractor before Qt goes (pyvistaqt crashes at exit otherwise)
        w.deleteLater()
    qtbot.wait(10)


@pytest.fixture
def window(make_window):
    """A main window, shown."""
    return make_window()


@pytest.fixture(scope="session")
def brain_files(tmp_path_factory) -> tuple[Path, Path]:
    """The sample left pial surface and the mirrored right one, decimated to ~1000 vertices (VTP)."""
    import shapeot
    from shapeot.ui.tasks import mirror_x

    folder = tmp_path_factory.mktemp("brains")
    lh = shapeot.load(SAMPLES / "fsaverage5_lh_pial.gii").decimate(N_POINTS)
    rh = mirror_x(shapeot.load(SAMPLES / "fsaverage5_rh_pial.gii").decimate(N_POINTS))
    paths = folder / "lh_pial.vtp", folder / "rh_pial_mirrored.vtp"
    lh.replace(name="lh").save(paths[0])
    rh.replace(name="rh").save(paths[1])
    return paths


@pytest.fixture(scope="session")
def cohort_folder(tmp_path_factory) -> Path:
    """Three subjects of the sample cohort, decimated to ~600 vertices, and one unreadable file."""
    import shapeot

    folder = tmp_path_factory.mktemp("cohort")
    for i in (1, 2, 3):
        shapeot.load(SAMPLES / "cohort" / f"subject_{i:02d}.gii").decimate(600).save(folder / f"subject_{i:02d}.vtp")
    (folder / "notes.txt").write_text("not a shape")
    return folder


@pytest.fixture(scope="session")
def quick_registration(brain_files):
    """A rigid registration of the decimated brains computed with the library (no GUI)."""
    import shapeot
    from shapeot.registration import RegistrationConfig

    src, tgt = (shapeot.load(p) for p in brain_files)
    config = RegistrationConfig.from_preset("rigid", prealign={"starts": 1, "iterations": 3}, engine={"backend": "torch"})
    return shapeot.register(src, tgt, config)


def set_fast_register(window, preset: str = "rigid", values: dict | None = None) -> None:
    """Choose a preset and tick the advanced box with a few fast values (through the widgets;
    ``values`` by dotted field name, e.g. ``{"prealign.starts": 24}``)."""
    p = window.params
    p.setCurrentIndex(0)
    p.preset.setCurrentText(preset)
    p.advanced.setChecked(True)
    form = p.register_form
    fast = {"prealign.starts": 2, "prealign.iterations": 3, "engine.backend": "torch", **(values or {})}
    for name, value in fast.items():
        w = form.widget(name)
        if hasattr(w, "setValue"):
            w.setValue(value)
        elif hasattr(w, "findData"):
            w.setCurrentIndex(w.findData(value))
        else:
            w.setText(str(value))


def run_until_idle(qtbot, window, action, timeout_s: float = 120.0) -> None:
    """Run ``action()`` and wait until the task queue is idle; fail on any error shown."""
    with qtbot.waitSignal(window.tasks.idle, timeout=int(timeout_s * 1000)):
        action()
    assert window.errors == [], window.errors


def open_by_menu(qtbot, window, monkeypatch, paths) -> None:
    """File ▸ Open with the file dialog answering ``paths``."""
    from PyQt5.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(p) for p in paths], "")))
    run_until_idle(qtbot, window, window.actions_by_name["open"].trigger, 60)


def image_array(image) -> np.ndarray:
    """(H, W, 3) uint8 of a QImage."""
    from PyQt5.QtGui import QImage

    img = image.convertToFormat(QImage.Format_RGB888)
    h, w = img.height(), img.width()
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    return np.frombuffer(ptr, np.uint8).reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


@pytest.fixture
def gui():
    """The helpers above, for the test modules (tests/ui is not a package: no imports between files)."""
    from types import SimpleNamespace

    return SimpleNamespace(set_fast_register=set_fast_register, run_until_idle=run_until_idle,
                           open_by_menu=open_by_menu, image_array=image_array)
