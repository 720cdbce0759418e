"""Which format a file is in, and whether it can be read: by its name, and for FreeSurfer files by their first bytes."""
from __future__ import annotations

import os

from shapeot.core.formats import FREESURFER_NAME, SUFFIX_FORMATS, format_of

from .errors import ShapeFileError, UnsupportedFormatError

__all__ = ["detect_format", "check_readable"]


def detect_format(path: str | os.PathLike, *, for_writing: bool = False) -> str:
    """The format of a file, from its name (and, for FreeSurfer surfaces, its first bytes).

    Parameters
    ----------
    path : str or PathLike
    for_writing : bool, default: False
        When reading, a file with an unknown name is recognised as a FreeSurfer surface by its
        magic number; when writing there are no bytes to look at.

    Returns
    -------
    str
        One of "vtk", "vtp", "stl", "ply", "obj", "off", "gifti", "gifti_gz", "freesurfer",
        "nifti", "mgh", "nrrd", "metaimage".

    Raises
    ------
    UnsupportedFormatError
        If the name matches no format shapeot knows.
    """
    name = os.path.basename(os.fspath(path))
    fmt = format_of(name)
    if fmt is not None:
        return fmt
    if FREESURFER_NAME.match(name):
        if not for_writing and os.path.isfile(path):
            with open(path, "rb") as fh:
                if fh.read(3) == b"\xff\xff\xff":  # the magic number of "new" morph files
                    raise ShapeFileError(path, "is FreeSurfer per-vertex data (thickness, curv, sulc), not a surface: "
                                         "read it with shapeot.shapes.read_overlay(path, surface), or pass it to "
                                         "`shapeot register --overlay`")
        return "freesurfer"
    if not for_writing and os.path.isfile(path):
        from .meshes import FREESURFER_MAGIC

        with open(path, "rb") as fh:
            if fh.read(3) == FREESURFER_MAGIC:
                return "freesurfer"
    known = ", ".join(s for s, _ in SUFFIX_FORMATS) + ", lh.*/rh.* (FreeSurfer)"
    raise UnsupportedFormatError(path, f"unsupported file type; shapeot reads {known}")


def check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ShapeFileError(path, "is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise ShapeFileError(path, "is empty (0 bytes)")
