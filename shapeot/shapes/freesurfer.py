"""FreeSurfer subjects: surfaces from a subject folder, its overlays, and the colour look-up table.

A FreeSurfer subject folder (``$SUBJECTS_DIR/bert``) holds ``surf/`` (``lh.pial``, ``lh.white``,
``lh.thickness``, ``lh.curv``, ``lh.sulc``, ...), ``label/`` (``lh.aparc.annot``, ``lh.cortex.label``,
...) and ``mri/`` (``orig.mgz``, ``aseg.mgz``, ...).

Coordinates
-----------
FreeSurfer surfaces store tkr-RAS ("surface RAS") millimetres. :func:`load_subject` returns scanner
RAS, the frame of the subject's volumes and of every other shapeot file:

* when the surface file carries valid ``volume_info`` (FreeSurfer 5+ writes it), its ``c_ras`` is
  added (the reader of :func:`shapeot.load` does this);
* otherwise, when ``mri/orig.mgz`` (or ``T1.mgz``, ``brain.mgz``) exists, the map
  ``vox2ras @ inv(vox2ras_tkr)`` of that volume is applied (a translation by c_ras for FreeSurfer's
  conformed volumes) and, when it is a translation, recorded as ``volume_info`` in ``Shape.meta``
  so that saving back to a FreeSurfer surface restores tkr-RAS;
* otherwise the coordinates stay tkr-RAS (``Shape.meta["freesurfer_frame"]`` says which).

Label names
-----------
:func:`label_value` / :func:`label_name` resolve aseg / aparc / wmparc names and numbers through
FreeSurfer's colour look-up table: ``$FREESURFER_HOME/FreeSurferColorLUT.txt`` when that variable is
set and the file exists, else the subset shipped in ``shapeot/shapes/data/FreeSurferColorLUT.txt``.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np

from .errors import LabelNotFoundError, ShapeFileError
from .overlays import Overlay, read_overlay
from .shape import Shape

__all__ = ["is_subject_dir", "load_subject", "subject_surfaces", "subject_file", "load_subject_overlay",
           "color_lut", "label_value", "label_name", "LUT_PATH", "FRAME_KEYS", "frame_of", "in_frame",
           "frame_to_data", "frame_from_data", "resolve_subject", "hemisphere_surface"]

LUT_PATH = Path(__file__).resolve().parent / "data" / "FreeSurferColorLUT.txt"
_VOLUMES = ("orig.mgz", "T1.mgz", "brain.mgz", "norm.mgz", "aseg.mgz")
# Names older FreeSurfer versions used for labels the shipped (FreeSurfer 7) table renamed.
_ALIASES = {"left-thalamus-proper": 10, "right-thalamus-proper": 49}


def is_subject_dir(path: str | os.PathLike) -> bool:
    """True for a folder with a ``surf/`` subfolder (a FreeSurfer subject)."""
    p = Path(path)
    return p.is_dir() and (p / "surf").is_dir()


def subject_surfaces(subject_dir: str | os.PathLike) -> list[str]:
    """The surface files in SUBJECT/surf (``lh.pial``, ``rh.white``, ...), by name; overlays excluded."""
    surf = Path(subject_dir) / "surf"
    out = []
    for p in sorted(surf.iterdir()) if surf.is_dir() else []:
        if p.is_file() and p.name[:3] in ("lh.", "rh."):
            with open(p, "rb") as fh:
                if fh.read(3) == b"\xff\xff\xfe":
                    out.append(p.name)
    return out


def subject_file(subject_dir: str | os.PathLike, name: str) -> Path:
    """SUBJECT/surf/NAME or SUBJECT/label/NAME (or NAME itself when it is a path that exists)."""
    if os.path.exists(name) and os.path.isfile(name):
        return Path(name)
    for sub in ("surf", "label", ""):
        p = Path(subject_dir) / sub / name
        if p.is_file():
            return p
    raise FileNotFoundError(f"{subject_dir}: no {name} in surf/ or label/")


def _tkr_to_scanner(subject_dir: Path):
    """(4x4 tkr-RAS -> scanner-RAS matrix, the volume's header) from the first volume in mri/."""
    import nibabel as nib

    for vol in _VOLUMES:
        p = subject_dir / "mri" / vol
        if p.is_file():
            hdr = nib.load(str(p)).header
            return hdr.get_vox2ras() @ np.linalg.inv(hdr.get_vox2ras_tkr()), hdr, p
    return None, None, None


def load_subject(subject_dir: str | os.PathLike, surf: str = "lh.pial", *, name: str | None = None) -> Shape:
    """The surface ``surf`` of a FreeSurfer subject folder, in scanner RAS mm (see the module docstring).

    Parameters
    ----------
    subject_dir : str or PathLike
        The subject folder (holding ``surf/``).
    surf : str, default: "lh.pial"
        A file of ``surf/``: ``lh.pial``, ``rh.white``, ``lh.inflated``, ``lh.sphere.reg``, ...
    name : str, optional
        Default: "SUBJECT/surf".

    Returns
    -------
    Shape
        With ``source = Source(SUBJECT/surf/SURF)``, ``meta["freesurfer_subject"]`` (the folder) and
        ``meta["freesurfer_frame"]`` ("scanner" or "tkr").

    Raises
    ------
    FileNotFoundError
        If the folder or the surface does not exist (the message lists the surfaces there).
    """
    from .reading import read_file

    sd = Path(subject_dir)
    if not sd.is_dir():
        raise FileNotFoundError(f"{sd}: no such folder")
    if not (sd / "surf").is_dir():
        raise ShapeFileError(sd, "is not a FreeSurfer subject folder (no surf/ subfolder)")
    path = sd / "surf" / surf
    if not path.is_file():
        have = ", ".join(subject_surfaces(sd)) or "none"
        raise FileNotFoundError(f"{path}: no such surface; {sd.name}/surf holds: {have}")
    shape = read_file(str(path), name=name or f"{sd.name}/{surf}")
    meta = dict(shape.meta)
    meta["freesurfer_subject"] = str(sd)
    if "freesurfer_volume_info" in meta:
        meta["freesurfer_frame"] = "scanner"
        return shape.replace(meta=meta, weights=shape.weights)
    m, hdr, vol = _tkr_to_scanner(sd)
    if m is None:
        meta["freesurfer_frame"] = "tkr"
        warnings.warn(f"{path} has no volume_info and {sd.name}/mri has no orig.mgz: coordinates stay "
                      "tkr-RAS (surface RAS), not scanner RAS", stacklevel=2)
        return shape.replace(meta=meta, weights=shape.weights)
    points = np.asarray(shape.points) @ m[:3, :3].T + m[:3, 3]
    meta["freesurfer_frame"] = "scanner"
    if np.allclose(m[:3, :3], np.eye(3), atol=1e-6):
        zooms = hdr.get_zooms()[:3]
        mdc = hdr.get_vox2ras()[:3, :3] / np.asarray(zooms)[None, :]
        meta["freesurfer_volume_info"] = {
            "head": np.array([2, 0, 20], dtype=np.int32), "valid": "1  # volume info valid",
            "filename": str(vol), "volume": np.array(hdr.get_data_shape()[:3], dtype=np.int64),
            "voxelsize": np.array(zooms, dtype=np.float64), "xras": mdc[:, 0], "yras": mdc[:, 1],
            "zras": mdc[:, 2], "cras": m[:3, 3].copy()}
    else:
        meta["freesurfer_tkr_to_scanner"] = m
    return shape.replace(points=points, meta=meta, weights=None)


def load_subject_overlay(subject_dir: str | os.PathLike, name: str, surface: Shape | int | None = None) -> Overlay:
    """An overlay of a subject by file name (``lh.thickness`` in surf/, ``lh.aparc.annot`` in label/),
    checked against ``surface`` (default: the subject's ``?h.white`` vertex count)."""
    path = subject_file(subject_dir, name)
    if surface is None:
        hemi = Path(name).name[:2]
        for surf in (f"{hemi}.white", f"{hemi}.pial"):
            p = Path(subject_dir) / "surf" / surf
            if p.is_file():
                from nibabel.freesurfer import read_geometry

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    surface = len(read_geometry(str(p))[0])
                break
    return read_overlay(path, surface)


# ------------------------------------------------------------------------------------ frames
#: The keys of ``Shape.meta`` that say which subject's frame the coordinates are in: written back
#: into FreeSurfer surfaces (``volume_info``, whose ``c_ras`` turns scanner RAS back into tkr-RAS).
FRAME_KEYS = ("freesurfer_volume_info", "freesurfer_frame", "freesurfer_tkr_to_scanner", "freesurfer_subject")


def frame_of(shape) -> dict:
    """The FreeSurfer frame of a shape (``FRAME_KEYS`` of its meta; empty for other shapes)."""
    return {k: shape.meta[k] for k in FRAME_KEYS if k in shape.meta}


def in_frame(shape, frame: dict):
    """``shape`` with its FreeSurfer frame replaced by ``frame`` (a warped surface lies in the
    target's space: written as a FreeSurfer surface, it must carry the target's ``volume_info``)."""
    meta = {k: v for k, v in shape.meta.items() if k not in FRAME_KEYS}
    return shape.replace(meta={**meta, **frame}, weights=shape.weights)


def frame_to_data(frame: dict) -> dict:
    """A frame as JSON-ready plain data (arrays as lists), for transform files."""
    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return {"__array__": v.tolist(), "dtype": str(v.dtype)}
        if isinstance(v, (np.generic,)):
            return v.item()
        return v
    return plain(dict(frame))


def frame_from_data(data: dict) -> dict:
    """The inverse of :func:`frame_to_data` (arrays restored with their dtypes: nibabel writes
    ``volume_info`` from them)."""
    def back(v):
        if isinstance(v, dict) and "__array__" in v:
            return np.asarray(v["__array__"], dtype=v.get("dtype", "float64"))
        if isinstance(v, dict):
            return {k: back(x) for k, x in v.items()}
        return v
    return {k: back(v) for k, v in dict(data or {}).items() if k in FRAME_KEYS}


def resolve_subject(name: str | os.PathLike, subjects_dir: str | os.PathLike | None = None) -> Path | None:
    """A subject folder from a path, or from an ID under ``subjects_dir`` (default
    ``$SUBJECTS_DIR``); None when neither names one."""
    p = Path(name)
    if is_subject_dir(p):
        return p
    base = subjects_dir or os.environ.get("SUBJECTS_DIR")
    if base and not p.is_absolute() and is_subject_dir(Path(base) / p):
        return Path(base) / p
    return None


def hemisphere_surface(surf: str, hemi: str | None) -> tuple[str, str]:
    """(hemisphere, file name of ``surf/``) from ``--surf`` (``pial`` or ``lh.pial``) and ``--hemi``."""
    given = surf[:2] if surf[:3] in ("lh.", "rh.") else None
    base = surf[3:] if given else surf
    hemi = hemi or given or "lh"
    if hemi not in ("lh", "rh"):
        raise ValueError(f"hemisphere must be lh or rh; got {hemi!r}")
    return hemi, f"{hemi}.{base}"


# ------------------------------------------------------------------------------------ colour LUT
@functools.lru_cache(maxsize=4)
def _read_lut(path: str) -> tuple[dict[int, str], dict[int, tuple[int, int, int, int]]]:
    names: dict[int, str] = {}
    colors: dict[int, tuple[int, int, int, int]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2 or parts[0].startswith("#") or not parts[0].lstrip("-").isdigit():
                continue
            value = int(parts[0])
            names[value] = parts[1]
            if len(parts) >= 6:
                try:
                    r, g, b, t = (int(float(c)) for c in parts[2:6])
                    colors[value] = (r, g, b, 255 - t)
                except ValueError:
                    pass
    if not names:
        raise ShapeFileError(path, "holds no colour table entries (lines of: number name R G B T)")
    return names, colors


def color_lut(path: str | os.PathLike | None = None) -> tuple[dict[int, str], dict[int, tuple]]:
    """({value: name}, {value: (r, g, b, a)}) of a FreeSurfer colour look-up table.

    ``path`` default: ``$FREESURFER_HOME/FreeSurferColorLUT.txt`` when it exists, else the table
    shipped with shapeot (aseg, aparc and wmparc labels).
    """
    if path is None:
        home = os.environ.get("FREESURFER_HOME")
        candidate = Path(home) / "FreeSurferColorLUT.txt" if home else None
        path = candidate if candidate is not None and candidate.is_file() else LUT_PATH
    return _read_lut(str(path))


def label_value(name: str | int, lut: str | os.PathLike | None = None) -> int:
    """The number of a label name (case-insensitive): ``label_value("Left-Hippocampus") == 17``.

    Raises
    ------
    LabelNotFoundError
        Listing close names when the name is not in the table.
    """
    if isinstance(name, (int, np.integer)):
        return int(name)
    names, _ = color_lut(lut)
    key = str(name).strip().lower()
    for value, n in names.items():
        if n.lower() == key:
            return value
    if key in _ALIASES:
        return _ALIASES[key]
    import difflib

    close = difflib.get_close_matches(str(name), list(names.values()), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LabelNotFoundError(str(lut or "FreeSurferColorLUT"), f"no label named {name!r} in the colour table{hint}")


def label_name(value: int, lut: str | os.PathLike | None = None) -> str | None:
    """The name of a label number in the FreeSurfer colour table, or None."""
    names, _ = color_lut(lut)
    return names.get(int(value))
