"""Fixtures of the desktop-app tests (pytest-qt under the Xvfb that pytest-xvfb starts).

The display, the settings file and the windows (``window``, ``make_window``) are fixtures of
tests/conftest.py, shared with the bad-input corpus. Tests that need no display (models,
builders) always run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"
N_POINTS = 1000  # decimated brains: a registration takes seconds on two cores


@pytest.fixture(scope="session")
def label_map() -> Path:
    """The sample segmented scan (MNI152 tissue labels, 2 mm): several labels."""
    return SAMPLES / "mni152_tissue_labels_2mm.nii.gz"





@pytest.fixture(scope="session")
def brain_files(tmp_path_factory) -> tuple[Path, Path]:
    """The sample left pial surface and the mirrored right one, decimated to ~1000 vertices (VTP)."""
    from shapeot.ui.tasks import mirror_x

    import shapeot

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
    config = RegistrationConfig.from_preset("rigid", prealign={"starts": 1, "iterations": 3},
                                            engine={"backend": "torch"})
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
