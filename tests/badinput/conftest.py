"""The bad-input corpus: every file is generated at test time into tmp_path, from tiny meshes.

Fixtures: ``ico`` (a 42-vertex icosphere of radius 10 mm as a Shape), ``ico_files`` (two
slightly different copies on disk, VTP), ``cli`` (runs ``shapeot.cli.main`` in-process and
returns (exit status, stdout, stderr)), ``tree`` (a snapshot of a folder: names and bytes, to
assert that nothing was written or changed); the app's windows are the shared ``make_window``
of tests/conftest.py (Xvfb through pytest-xvfb, skipped without a display).
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
