"""The sample brains shipped inside the package: :func:`sample_path`.

The fsaverage5 left and right pial surfaces (10,242 vertices each, RAS mm; FreeSurfer's
fsaverage5 as nilearn ships it: provenance and licence in ``sample_meshes/README.md``) live in
``shapeot/data/`` so that ``shapeot demo`` and the app's sample pair work from an installed
wheel; ``sample_meshes/`` of a checkout links to them.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_BRAINS", "sample_path"]

#: The files :func:`sample_path` knows.
SAMPLE_BRAINS = ("fsaverage5_lh_pial.gii", "fsaverage5_rh_pial.gii")


def sample_path(name: str = "fsaverage5_lh_pial.gii") -> Path:
    """The path of a shipped sample file (one of :data:`SAMPLE_BRAINS`).

    Raises
    ------
    ValueError
        For a name that is not shipped (the message lists those that are).
    FileNotFoundError
        If the installation lacks the file (a wheel built without its package data).
    """
    if name not in SAMPLE_BRAINS:
        raise ValueError(f"no sample called {name!r}; shipped: {', '.join(SAMPLE_BRAINS)}")
    path = Path(__file__).resolve().parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the sample brain is missing from this installation of shapeot; "
                                "reinstall shapeot, or run from a checkout (sample_meshes/)")
    return path
