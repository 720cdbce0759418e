"""Fixtures of the registration tests: a real brain surface, decimated, and known warps of it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"
_NAMES = ("lh.pial.gii", "fsaverage5_lh_pial.gii")


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """One intra-op thread while these tests run, restored afterwards.

    On a shared 2-core machine, torch's OpenMP threads spin against other processes and the
    many small solves of a registration run 5-10x slower (measured: 183 s instead of 15 s for
    the diffeomorphic test). One thread gives timings that do not depend on the neighbours.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def brain_full():
    """The fsaverage5 left pial surface (10,242 vertices, mm) from sample_meshes/."""
    from shapeot.shapes import load

    for name in _NAMES:
        if (SAMPLES / name).exists():
            return load(SAMPLES / name)
    pytest.skip(f"no fsaverage5 left pial surface in {SAMPLES}")


@pytest.fixture(scope="session")
def brain(brain_full):
    """The left pial surface decimated to ~2000 vertices (keeps the tests under a few minutes)."""
    return brain_full.decimate(2000)


@pytest.fixture(scope="session")
def small_brain(brain_full):
    """~1000 vertices, for the slower models and the command line."""
    return brain_full.decimate(1000)


def shuffled(shape, seed: int = 0):
    """The same surface with its vertices in another order (faces renumbered)."""
    from shapeot.shapes import Shape

    perm = np.random.default_rng(seed).permutation(shape.n_points)
    return Shape(shape.points[perm], np.argsort(perm)[shape.faces], units=shape.units, name=f"{shape.name} shuffled")


@pytest.fixture(scope="session")
def warped_same(brain):
    """(source, target, truth): known smooth warp + 20 deg / 10 mm rigid motion, same vertices shuffled."""
    from shapeot.shapes.synthetic import warp_pair

    pair = warp_pair(brain, seed=1, resample=False)
    return brain, shuffled(pair.target), pair.truth


@pytest.fixture(scope="session")
def warped_remeshed(brain):
    """(source, target, truth): the same warp, target re-meshed with half the vertices (no twins)."""
    from shapeot.shapes.synthetic import resample_surface, warp_pair

    pair = warp_pair(brain, seed=1, resample=False)
    return brain, resample_surface(pair.target, 3, n_points=brain.n_points // 2), pair.truth
