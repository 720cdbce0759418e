"""The bad-input corpus: every file is generated at test time into tmp_path, from tiny meshes.

Fixtures: ``ico`` (a 42-vertex icosphere of radius 10 mm as a Shape), ``ico_files`` (two
slightly different copies on disk, VTP), ``cli`` (runs ``shapeot.cli.main`` in-process and
returns (exit status, stdout, stderr)), ``tree`` (a snapshot of a folder: names and bytes, to
assert that nothing was written or changed), and ``make_window`` for the app (the pattern of
tests/ui/conftest.py: Xvfb through pytest-xvfb, skipped without a display).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def icosphere(subdivisions: int = 1, radius: float = 10.0, seed: int | None = None, **kwargs):
    import trimesh

    from shapeot.shapes import Shape

    ico = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    pts = np.asarray(ico.vertices)
    if seed is not None:
        pts = pts * (1 + 0.05 * np.random.default_rng(seed).normal(size=(len(pts), 1)))
    return Shape(pts, ico.faces, name=kwargs.pop("name", "ico"), **kwargs)


@pytest.fixture(scope="session")
def ico():
    return icosphere()


@pytest.fixture
def ico_files(tmp_path):
    """Two 162-vertex spheres (mm) on disk: (source.vtp, target.vtp)."""
    src, tgt = tmp_path / "source.vtp", tmp_path / "target.vtp"
    icosphere(2, seed=1).save(src)
    icosphere(2, radius=11.0, seed=2).save(tgt)
    return src, tgt


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


@pytest.fixture
def tree():
    return snapshot


@pytest.fixture
def cli(capsys):
    """Run the command line in-process: (exit status, stdout, stderr)."""
    from shapeot.cli import main

    def run(*args):
        rc = main([str(a) for a in args])
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Main windows of the app (closed at teardown); skipped where no X server can be reached."""
    pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")
    from shapeot.ui.app import display_available

    if not display_available():
        if os.environ.get("SHAPEOT_REQUIRE_GUI_TESTS") == "1":
            pytest.fail("no X server (install Xvfb; pytest-xvfb starts it)")
        pytest.skip("no X server could be reached: install Xvfb (pytest-xvfb then starts it) or set DISPLAY")
    from shapeot.ui.settings import Settings
    from shapeot.ui.window import MainWindow

    windows = []

    def make(**kwargs):
        w = MainWindow(Settings(tmp_path / "settings.ini"), **kwargs)
        windows.append(w)
        w.resize(900, 600)
        w.show()
        qtbot.waitExposed(w)
        return w

    yield make
    for w in windows:
        w.tasks.shutdown(30.0)
        w.close()
        w.deleteLater()
    qtbot.wait(10)
