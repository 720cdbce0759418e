"""Fixtures of the template tests: the seeded synthetic cohort of sample_meshes/ and a fast configuration.

The cohort (sample_meshes/README.md): ten subjects of ~2,560 vertices, known paired warps of
``cohort_reference.gii`` (the true mean), each resampled along its surface, with a dominant mode
(``cohort/mode.npy``) and each subject's score along it (``cohort/cohort.json``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meshes"
COHORT = SAMPLES / "cohort"


@pytest.fixture(scope="session")
def cohort():
    """The ten subjects, loaded with shapeot.load_folder (a LoadedFolder)."""
    from shapeot.templates import load_folder

    if not (COHORT / "subject_01.gii").exists():
        pytest.skip(f"no synthetic cohort in {COHORT}")
    return load_folder(COHORT, pattern="subject_*.gii")


@pytest.fixture(scope="session")
def reference():
    """The cohort's true mean shape (2,563 vertices, mm)."""
    from shapeot.shapes import load

    return load(SAMPLES / "cohort_reference.gii")


@pytest.fixture(scope="session")
def generator():
    """(mode (2563, 3) at the reference vertices, max norm 1; each subject's mode score, mm)."""
    manifest = json.loads((COHORT / "cohort.json").read_text())
    scores = np.array([s["mode_score_mm"] for s in manifest["subjects"]])
    return np.load(COHORT / "mode.npy").astype(np.float64), scores


def fast_config(**changes):
    """A cheap template configuration for the executor, CLI and input tests (two coarse levels,
    two starting rotations, two iterations, no surface distances)."""
    from shapeot.registration import Level, RegistrationConfig
    from shapeot.templates import TemplateConfig

    reg = RegistrationConfig.from_preset("nonrigid", prealign=None,
                                         levels=(Level(300, 0.08, 0.4, 1), Level(600, 0.04, 0.2, 1)))
    base = dict(registration=reg, iterations=2, procrustes_starts=2, procrustes_iterations=2,
                compute_distances=False, n_modes=3)
    return TemplateConfig(**{**base, **changes})
