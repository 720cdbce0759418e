"""File-name suffixes and the formats they name: the one table every reader and writer consults.

Names are matched case-insensitively, longest suffix first (".seg.nrrd" before ".nrrd",
".nii.gz" before ".gz"). FreeSurfer surfaces and morph files have no suffix (``lh.pial``,
``rh.thickness``): :data:`FREESURFER_NAME` recognises them.
"""
from __future__ import annotations

import os
import re

__all__ = ["SUFFIX_FORMATS", "MESH_FORMATS", "SCAN_FORMATS", "WRITABLE_MESH_FORMATS", "ITK_TRANSFORM_SUFFIXES",
           "IMAGE_SUFFIXES", "FREESURFER_NAME", "format_of", "strip_suffix", "is_mesh_file", "safe_stem"]

#: (suffix, format) of every file shapeot reads as a shape, longest suffix first.
SUFFIX_FORMATS: tuple[tuple[str, str], ...] = (
    (".gii.gz", "gifti_gz"), (".nii.gz", "nifti"), (".seg.nrrd", "nrrd"),
    (".vtk", "vtk"), (".vtp", "vtp"), (".stl", "stl"), (".ply", "ply"), (".obj", "obj"),
    (".off", "off"), (".gii", "gifti"), (".nii", "nifti"), (".mgz", "mgh"), (".mgh", "mgh"),
    (".nrrd", "nrrd"), (".nhdr", "nrrd"), (".mha", "metaimage"), (".mhd", "metaimage"),
)
#: Formats that hold a surface or a point cloud (FreeSurfer surfaces too, which have no suffix).
MESH_FORMATS = frozenset({"vtk", "vtp", "stl", "ply", "obj", "off", "gifti", "gifti_gz", "freesurfer"})
#: Formats that hold a label map (a surface per label is extracted on reading).
SCAN_FORMATS = frozenset({"nifti", "mgh", "nrrd", "metaimage"})
#: Mesh formats the batch writers offer by name (``--format``).
WRITABLE_MESH_FORMATS = ("vtp", "vtk", "ply", "gii")
#: ITK transform files (an HDF5 transform) and images that hold a displacement field.
ITK_TRANSFORM_SUFFIXES = (".h5", ".hdf5")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: FreeSurfer surfaces and per-vertex files: lh.pial, rh.white, lh.pial.T1, lh.sphere.reg, ...
FREESURFER_NAME = re.compile(r"^(lh|rh)\.[A-Za-z0-9_.\-]+$")


def _name(path: str | os.PathLike) -> str:
    return os.path.basename(os.fspath(path))


def format_of(path: str | os.PathLike) -> str | None:
    """The format its suffix names ("vtp", "nifti", ...), or None (no suffix matched: a
    FreeSurfer name, or an unknown file)."""
    lower = _name(path).lower()
    return next((fmt for suffix, fmt in SUFFIX_FORMATS if lower.endswith(suffix)), None)


def strip_suffix(path: str | os.PathLike) -> str:
    """The file name without its shape suffix (".gii.gz", ".seg.nrrd" count as one); the name
    itself when none matches."""
    name = _name(path)
    lower = name.lower()
    for suffix, _ in SUFFIX_FORMATS:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_mesh_file(path: str | os.PathLike) -> bool:
    """Whether the name ends in a mesh suffix (FreeSurfer surfaces have none: not counted)."""
    return format_of(path) in MESH_FORMATS


def safe_stem(name: str) -> str:
    """A file-system-safe stem from a shape's name: its suffix removed, other characters than
    letters, digits and ``._+-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", strip_suffix(name)).strip("._") or "subject"
