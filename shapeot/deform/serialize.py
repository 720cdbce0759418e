r"""Transform files: a whole deformation (pre-alignment and every level) in one file, and its use.

A registration's ``deformation`` is a tree of small frozen dataclasses (:class:`Composition` of
:class:`LinearMap`, :class:`KernelSpline`, :class:`LDDMM`, nested compositions) whose fields are
numpy arrays, numbers, strings, ``None`` and tuples of models. :func:`save_transform` writes that
tree to one file and :func:`load_transform` rebuilds it exactly (bit for bit: arrays keep their
dtype and values, floats go through JSON's shortest round-trip representation), so the loaded map
moves points exactly as the original did.

The file format ("shapeot-transform", version 1)
-------------------------------------------------

A NumPy ``.npz`` archive (a zip of ``.npy`` files; readable without shapeot by
``numpy.load(path)``) holding

* ``header``: a 0-d unicode array, a JSON document::

    {"format": "shapeot-transform", "version": 1,
     "units": "mm", "frame": "RAS",
     "direction": "forward: x -> phi(x) moves source points onto the target",
     "model": NODE, "meta": {...}}

  where a NODE is ``{"class": NAME, "module": MODULE, "fields": {FIELD: VALUE, ...}}`` and a VALUE
  is a JSON number, string, boolean or null, ``{"array": KEY}`` (an array stored under KEY in the
  archive), ``{"tuple": [VALUE, ...]}``, or a nested NODE;
* ``a0``, ``a1``, ...: the arrays, stored with their own dtype (float64 for coordinates).

Coordinates are world RAS millimetres, the frame of :class:`shapeot.Shape` (ITK's LPS export is
:mod:`shapeot.deform.itk`). Reading never unpickles anything (``allow_pickle=False``), and a class
is rebuilt only if it is in the registry (:func:`register_model`) or is a dataclass defined in a
``shapeot.*`` module.

Adding a model class
--------------------
Any frozen dataclass of arrays / numbers / None / nested models defined inside ``shapeot`` is
saved and loaded without further work; a class defined elsewhere needs one line,
``register_model(MyModel)``.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save_transform", "write_transform_file", "load_transform", "read_transform", "apply_transform",
           "apply_to_file",
           "register_model", "TransformFileError", "FORMAT", "VERSION"]

FORMAT = "shapeot-transform"
VERSION = 1
_DIRECTION = "forward: x -> phi(x) moves source points onto the target"

_REGISTRY: dict[str, type] = {}


class TransformFileError(ValueError):
    """A transform file that is not a readable shapeot transform (names the file and the reason)."""

    def __init__(self, path, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)


def register_model(cls: type, name: str | None = None) -> type:
    """Make a dataclass savable under ``name`` (default: its class name); usable as a decorator."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    _REGISTRY[name or cls.__name__] = cls
    return cls


def _default_registry() -> None:
    if _REGISTRY:
        return
    from .compose import Composition
    from .lddmm import LDDMM
    from .linear import LinearMap
    from .spline import KernelSpline

    for cls in (Composition, LinearMap, KernelSpline, LDDMM):
        register_model(cls)


# ------------------------------------------------------------------------------------ encoding
def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)  # json writes repr(float): the shortest string that reads back exactly
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        name = cls.__name__
        if _REGISTRY.get(name) is not cls and not cls.__module__.startswith("shapeot."):
            raise TypeError(f"cannot save a {cls.__module__}.{name}: register it first with "
                            "shapeot.deform.serialize.register_model")
        fields = {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value) if f.init}
        return {"class": name, "module": cls.__module__, "fields": fields}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_encode(v, arrays) for v in value]}
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot save an array of dtype {value.dtype} (numbers only)")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {"array": key}
    raise TypeError(f"cannot save a field of type {type(value).__name__}")


def _decode(node: Any, arrays, path) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        raise TransformFileError(path, "malformed header (a bare list)")
    if "array" in node:
        key = node["array"]
        if key not in arrays:
            raise TransformFileError(path, f"the header names array {key!r}, which the file does not hold")
        out = np.array(arrays[key])  # a private, writable copy
        return out
    if "tuple" in node:
        return tuple(_decode(v, arrays, path) for v in node["tuple"])
    if "class" in node:
        cls = _class(node["class"], node.get("module", ""), path)
        kwargs = {k: _decode(v, arrays, path) for k, v in node.get("fields", {}).items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise TransformFileError(path, f"cannot rebuild {node['class']}: {exc}") from exc
    raise TransformFileError(path, f"malformed header node {sorted(node)}")


def _class(name: str, module: str, path) -> type:
    _default_registry()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if module.startswith("shapeot."):  # a model class of this library the registry does not list yet
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            cls = None
        if cls is not None and dataclasses.is_dataclass(cls):
            return cls
    raise TransformFileError(path, f"unknown model class {module}.{name} (a newer shapeot wrote this file?)")


# ------------------------------------------------------------------------------------ public API
def save_transform(deformation, path: str | os.PathLike, *, overwrite: bool = False,
                   meta: dict | None = None, target_frame: dict | None = None) -> Path:
    """Write a deformation (any model or :class:`Composition` of models) to a transform file.

    Parameters
    ----------
    deformation : a deformation model
        E.g. ``Registration.deformation`` (pre-alignment and every non-rigid level), a
        :class:`LinearMap`, a :class:`KernelSpline`. World RAS millimetres.
    path : str or PathLike
        The file to write; ``.npz`` is the suggested extension (any name is accepted).
    overwrite : bool, default: False
        Replace an existing file.
    meta : dict, optional
        JSON-serialisable facts to keep with the map (source and target names, ...).
    target_frame : dict, optional
        The target's FreeSurfer frame (:func:`shapeot.shapes.freesurfer.frame_of`): surfaces
        moved by :func:`apply_transform` are written in it (their ``volume_info``).

    Returns
    -------
    Path
        ``path``, written through :mod:`shapeot.core.outputs` (staged, created exclusively
        unless ``overwrite``).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    TypeError
        If the deformation holds something this format cannot store.
    """
    from shapeot.core.outputs import single_output

    path = Path(path)
    with single_output(path, overwrite=overwrite) as tmp:
        write_transform_file(deformation, tmp, meta=meta, target_frame=target_frame)
    return path


def write_transform_file(deformation, path: str | os.PathLike, *, meta: dict | None = None,
                         target_frame: dict | None = None) -> None:
    """The file of :func:`save_transform` written to ``path`` as it is (a staged path: no checks)."""
    from shapeot.shapes.freesurfer import frame_to_data

    _default_registry()
    arrays: dict[str, np.ndarray] = {}
    model = _encode(deformation, arrays)
    from shapeot.core.version import version

    header = {"format": FORMAT, "version": VERSION, "units": "mm", "frame": "RAS", "direction": _DIRECTION,
              "model": model, "meta": dict(meta or {}), "shapeot_version": version(),
              "target_frame": frame_to_data(target_frame or {})}
    with open(path, "xb") as fh:
        np.savez(fh, header=np.array(json.dumps(header, allow_nan=True)), **arrays)


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a transform file (format, version, units, frame, model tree, meta)."""
    return _open(path)[0]


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = dict(z.items())
    except (OSError, ValueError) as exc:
        raise TransformFileError(path, f"is not a shapeot transform file (.npz): {exc}") from exc
    if "header" not in files:
        raise TransformFileError(path, "is an .npz archive without a shapeot transform header")
    try:
        header = json.loads(str(files.pop("header")))
    except json.JSONDecodeError as exc:
        raise TransformFileError(path, f"unreadable header: {exc}") from exc
    if header.get("format") != FORMAT:
        raise TransformFileError(path, f"format is {header.get('format')!r}, not {FORMAT!r}")
    if int(header.get("version", 0)) > VERSION:
        raise TransformFileError(path, f"format version {header.get('version')} is newer than this shapeot "
                                 f"reads ({VERSION}); upgrade shapeot")
    if header.get("units", "mm") != "mm" or header.get("frame", "RAS") != "RAS":
        raise TransformFileError(path, f"units/frame {header.get('units')}/{header.get('frame')} are not mm/RAS")
    return header, files


def read_transform(path: str | os.PathLike) -> tuple[Any, dict]:
    """(deformation, header) of a transform file: the map and what was stored with it (``meta``:
    the source and target it was computed between; ``target_frame``; ``shapeot_version``)."""
    header, arrays = _open(path)
    return _decode(header["model"], arrays, path), header


def load_transform(path: str | os.PathLike):
    """Read a transform file written by :func:`save_transform`: the same deformation object.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    TransformFileError
        (a ``ValueError``) if it is not a shapeot transform, is of a newer version, or names a
        model class this version does not know.
    """
    header, arrays = _open(path)
    return _decode(header["model"], arrays, path)


# ------------------------------------------------------------------------------------ apply
_XYZ = ("x", "y", "z")


def _coordinate_columns(header_row: list[str] | None, fcsv: bool) -> tuple[int, int, int] | None:
    if header_row is not None:
        names = [c.strip().lower() for c in header_row]
        if all(n in names for n in _XYZ):
            return tuple(names.index(n) for n in _XYZ)
    return None if not fcsv else (1, 2, 3)


def _is_number_row(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return len(cells) == 3


def _rewrite_csv(deformation, src: Path, dst: Path) -> int:
    """Move the points of a CSV / .fcsv file; every other cell, comment and the header are kept.

    Coordinates are the columns named x, y, z in a header row when there is one; otherwise the
    convention of :func:`shapeot.shapes.landmarks.read_landmarks` (``.fcsv``: columns 2-4; other files: the
    last three). Slicer markups declaring ``# CoordinateSystem = LPS`` are converted to RAS and back.
    """
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    fcsv = src.suffix.lower() == ".fcsv"
    lps = any(r and r[0].lstrip().startswith("#") and "coordinatesystem" in r[0].replace(" ", "").lower()
              and ("lps" in r[0].lower() or r[0].strip().endswith("= 1")) for r in rows)
    cols = None
    first_data = next((r for r in rows if r and not r[0].lstrip().startswith("#")), None)
    if first_data is not None and not _is_number_row(first_data[-3:]):
        cols = _coordinate_columns(first_data, fcsv)
    if cols is None:
        from shapeot.shapes.landmarks import read_landmarks  # the CLI's landmark format: one reader for both

        expected = read_landmarks(src)
    else:
        expected = None
    where, pts = [], []
    for r_i, row in enumerate(rows):
        if not row or row[0].lstrip().startswith("#"):
            continue
        c = cols if cols is not None else ((1, 2, 3) if fcsv else tuple(range(len(row) - 3, len(row))))
        if max(c) >= len(row) or min(c) < 0:
            continue
        try:
            p = [float(row[i]) for i in c]
        except ValueError:
            continue  # a header
        where.append((r_i, c))
        pts.append(p)
    if not pts:
        raise ValueError(f"{src}: no points found (expected x, y, z columns in mm)")
    pts = np.asarray(pts, dtype=np.float64)
    if expected is not None and (expected.shape != pts.shape or not np.array_equal(expected, pts)):
        raise ValueError(f"{src}: could not locate the landmark coordinates unambiguously")
    flip = np.array([-1.0, -1.0, 1.0]) if lps else np.ones(3)
    moved = np.asarray(deformation.apply(pts * flip)) * flip
    for (r_i, c), p in zip(where, moved):
        for k, i in enumerate(c):
            rows[r_i][i] = f"{p[k]:.6f}"
    with open(dst, "x", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return len(pts)


def apply_transform(transform, input_path: str | os.PathLike, output_path: str | os.PathLike, *,
                    overwrite: bool = False, frame: str = "target") -> Path:
    """Move a file's points with a deformation and write the result.

    Parameters
    ----------
    transform : path or deformation model
        A transform file (:func:`save_transform`) or a model with ``.apply(points)``.
    input_path : str or PathLike
        * a surface or point-cloud file that :func:`shapeot.load` reads (``lh.white``, ``.gii``,
          ``.vtp``, ...): written to ``output_path`` (format by its extension) with the same faces,
          vertex order and point data;
        * a ``.csv`` / ``.txt`` points file with a header naming ``x, y, z`` columns: those columns
          are replaced, every other column and the header kept;
        * a landmark file in the format of ``shapeot register --landmarks``
          (:func:`shapeot.shapes.landmarks.read_landmarks`: ``.fcsv`` Slicer markups, or CSV rows whose last
          three cells are x, y, z): coordinates replaced in place, other cells and comments kept.
    output_path : str or PathLike
        Never the input; written through :mod:`shapeot.core.outputs`.
    overwrite : bool, default: False
    frame : {"target", "source"}, default: "target"
        Which subject's FreeSurfer frame a moved surface carries (its ``volume_info``, used when
        written as a FreeSurfer surface): the target's, stored in the transform file (the moved
        surface lies in the target's space), or the input's own.

    Returns
    -------
    Path
        ``output_path``.
    """
    from shapeot.core.outputs import single_output

    src, dst = Path(input_path), Path(output_path)
    inputs = [src] + ([Path(transform)] if isinstance(transform, (str, os.PathLike)) else [])
    if frame not in ("target", "source"):
        raise ValueError(f"frame must be 'target' or 'source'; got {frame!r}")
    with single_output(dst, overwrite=overwrite, inputs=inputs) as tmp:
        apply_to_file(transform, src, tmp, frame=frame)
    return dst


def apply_to_file(transform, input_path: str | os.PathLike, output_path: str | os.PathLike, *,
                  frame: str | dict = "target") -> None:
    """The work of :func:`apply_transform`, written to ``output_path`` as it is (a staged path
    whose name gives the format: no existence check). ``frame``: "target" (the transform file's
    target frame), "source", or a frame (:func:`shapeot.shapes.freesurfer.frame_of`)."""
    from shapeot.shapes.freesurfer import frame_from_data, in_frame

    src, dst = Path(input_path), Path(output_path)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file")
    target_frame = frame if isinstance(frame, dict) else None
    if isinstance(transform, (str, os.PathLike)):
        header, arrays = _open(transform)
        deformation = _decode(header["model"], arrays, transform)
        if frame == "target":
            target_frame = frame_from_data(header.get("target_frame"))
    else:
        deformation = transform
    if src.suffix.lower() in (".csv", ".fcsv", ".txt"):
        _rewrite_csv(deformation, src, dst)
        return
    from shapeot.shapes import load
    from shapeot.shapes.writing import check_output_path, write_shape

    shape = load(src)
    moved = shape.with_points(np.asarray(deformation.apply(shape.points)), weights=shape.weights)
    if target_frame is not None and frame != "source":
        moved = in_frame(moved, target_frame)
    write_shape(moved, dst, check_output_path(dst, moved))
