"""Fixtures of the registration tests: a real brain surface, decimated, and known warps of it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"


@pytest.fixture(scope="session")
def brain(brain_full):
    """The left pial surface decimated to ~2000 vertices (keeps the tests under a few minutes)."""
    return brain_full.decimate(2000)


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
