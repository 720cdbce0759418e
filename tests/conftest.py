"""Shared fixtures, once for every package of tests: seeds, one torch thread, the sample brains.

Package conftests hold what only their package uses (MRML scenes, windows, subject folders).
"""
from __future__ import annotations

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
