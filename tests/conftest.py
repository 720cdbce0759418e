"""Shared fixtures, once for every package of tests: seeds, one torch thread, the sample brains,
and the desktop app's windows.

GUI tests need an X server: pyvistaqt's QtInteractor cannot render with
QT_QPA_PLATFORM=offscreen. pytest-xvfb starts Xvfb for the session when it is installed
(``scripts/bootstrap.sh`` installs it on Debian/Ubuntu); only when no X server can be reached
are the GUI tests skipped, with the reason. ``SHAPEOT_REQUIRE_GUI_TESTS=1`` turns that skip
into an error (for CI). Package conftests hold what only their package uses (MRML scenes,
subject folders).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_meshes"


def pytest_configure(config):
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch intra-op thread for the whole run, restored afterwards.

    On a shared 2-core machine torch's OpenMP threads spin against other processes and the many
    small solves of a registration run 5-10x slower (measured: 183 s instead of 15 s for the
    diffeomorphic test); one thread gives results and timings that do not depend on the
    neighbours. numba's kernels keep their own threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def working_backends() -> list[str]:
    from shapeot.ot import available_backends

    return available_backends()


@pytest.fixture(scope="session")
def brain_full():
    """The fsaverage5 left pial surface (10,242 vertices, RAS mm) from sample_meshes/."""
    from shapeot.shapes import load

    path = SAMPLES / "fsaverage5_lh_pial.gii"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return load(path)


@pytest.fixture(scope="session")
def small_brain(brain_full):
    """The left pial surface decimated to ~1000 vertices (keeps registrations to seconds)."""
    return brain_full.decimate(1000)


@pytest.fixture(scope="session")
def subject_brain():
    """A subject of the sample cohort (a known smooth warp of fsaverage5), decimated to ~1000 vertices."""
    from shapeot.shapes import load

    path = SAMPLES / "cohort" / "subject_01.gii"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return load(path).decimate(1000)


GUI_MISSING = "the desktop app needs PyQt5, pyvista and pyvistaqt: pip install 'shapeot[gui]'"


def _display_reason() -> str | None:
    from shapeot.ui.app import display_available

    if display_available():
        return None
    return ("no X server could be reached (DISPLAY=%r): install Xvfb (apt-get install xvfb; pytest-xvfb then "
            "starts it) or set DISPLAY" % os.environ.get("DISPLAY"))


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
