"""Per-vertex data on a surface (thickness, curvature, parcellations, GIfTI maps): :class:`Overlay`.

An overlay is values on the vertices of one surface, read from and written back to the formats
FreeSurfer and the GIfTI tools use:

====================================  ======================  =====================================
file                                  kind                    reader (nibabel)
====================================  ======================  =====================================
lh.thickness, lh.curv, lh.sulc, ...   continuous (N,)         ``freesurfer.read_morph_data``
(FreeSurfer "curv" files, any name)
lh.aparc.annot (``.annot``)           labels (N,)             ``freesurfer.read_annot``
lh.cortex.label (``.label``)          labels (N,) 0/1         ``freesurfer.read_label``
``.mgh`` / ``.mgz`` (N x 1 x 1)       continuous (N,) (N, k)  ``nibabel.load``
``.gii`` (``.shape.gii``,             continuous (N,) (N, k)  ``nibabel.load`` (GIfTI data arrays;
``.func.gii``, ``.label.gii``)        or labels               NIFTI_INTENT_LABEL arrays are labels)
``.csv`` (a header row; a ``vertex``  continuous (N,) (N, k)  ``numpy`` (one row per vertex, in
column is optional)                   or labels (``kind``)    vertex order or by the ``vertex`` column)
====================================  ======================  =====================================

Readers validate the values (one row per vertex of the surface when its vertex count is given,
finite continuous values, integer labels) and name the file in every error. Writers write the
overlay's own format (or the one the output name asks for) through :mod:`shapeot.core.outputs`
(staged, exclusive, atomic). One reader and one writer per format, in the tables ``_READERS``
and ``_WRITERS``.

Labels are stored as integers with a table ``label_names`` {value: name} and ``label_colors``
{value: (r, g, b, a) 0-255}. For ``.annot`` files the values are the indices into the file's
colour table (-1 for vertices without a label), so names and colours survive a round trip.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from .errors import ShapeFileError

__all__ = ["Overlay", "read_overlay", "write_overlay", "write_overlay_file", "overlay_format", "OVERLAY_FORMATS"]

OVERLAY_FORMATS = ("morph", "annot", "label", "mgh", "gifti", "csv")
#: Column names of a CSV overlay that hold the vertex index rather than values.
_INDEX_COLUMNS = ("vertex", "source_index", "target_index", "index")
_MORPH_MAGIC = b"\xff\xff\xff"  # FreeSurfer "new" curv format
_SURFACE_MAGIC = b"\xff\xff\xfe"


@dataclasses.dataclass(frozen=True, eq=False)
class Overlay:
    """Values on the N vertices of a surface.

    Attributes
    ----------
    name : str
        E.g. "lh.thickness".
    values : (N,) or (N, k) array
        float64 for continuous overlays, int64 for labels.
    kind : {"continuous", "labels"}
    label_names : mapping int -> str
        Name of each label value (labels only; may be empty).
    label_colors : mapping int -> (4,) int
        RGBA colour (0-255) of each label value (labels only; may be empty).
    source : str or None
        The file read.
    format : str or None
        "morph", "annot", "label", "mgh" or "gifti": the format read, written back by default.
    meta : mapping
        Format details kept for writing (GIfTI intent, annot colour table, label scalars, ...).
    """

    name: str
    values: np.ndarray
    kind: Literal["continuous", "labels"] = "continuous"
    label_names: Mapping[int, str] = dataclasses.field(default_factory=dict)
    label_colors: Mapping[int, Any] = dataclasses.field(default_factory=dict)
    source: str | None = None
    format: str | None = None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.kind not in ("continuous", "labels"):
            raise ValueError(f"kind must be 'continuous' or 'labels'; got {self.kind!r}")
        v = np.asarray(self.values)
        if v.ndim not in (1, 2) or len(v) == 0:
            raise ValueError(f"overlay {self.name!r}: values must be (N,) or (N, k) with N >= 1; got {v.shape}")
        if self.kind == "labels":
            if v.dtype.kind == "f":
                if not np.isfinite(v).all() or not np.all(np.mod(v, 1) == 0):
                    raise ValueError(f"overlay {self.name!r}: label values must be integers")
            v = v.astype(np.int64)
        else:
            v = v.astype(np.float64)
            if not np.isfinite(v).all():
                bad = int((~np.isfinite(v)).reshape(len(v), -1).any(1).sum())
                raise ValueError(f"overlay {self.name!r}: {bad} vertices have NaN or infinite values")
        v = np.array(v, copy=True)
        v.flags.writeable = False
        set_(self, "values", v)
        set_(self, "label_names", MappingProxyType({int(k): str(n) for k, n in dict(self.label_names).items()}))
        set_(self, "label_colors", MappingProxyType({int(k): tuple(int(c) for c in col)
                                                      for k, col in dict(self.label_colors).items()}))
        set_(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def n_vertices(self) -> int:
        return len(self.values)

    def replace(self, **changes: Any) -> Overlay:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def check_vertices(self, n_vertices: int) -> Overlay:
        """Self, or a ShapeFileError naming the file when the vertex counts differ."""
        if self.n_vertices != int(n_vertices):
            raise ShapeFileError(self.source or self.name,
                                 f"holds {self.n_vertices} values but the surface has {n_vertices} vertices "
                                 "(an overlay of another subject or hemisphere?)")
        return self

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.values.shape))
        extra = f", {len(self.label_names)} names" if self.kind == "labels" else ""
        return f"Overlay({self.name!r}, {shape} {self.kind}{extra}, format={self.format!r})"


# ------------------------------------------------------------------------------------ formats
def overlay_format(path: str | os.PathLike, *, for_writing: bool = False) -> str:
    """The overlay format of a file, from its name (and, when reading a FreeSurfer name, its bytes)."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".annot"):
        return "annot"
    if name.endswith(".label") and not name.endswith(".label.gii"):
        return "label"
    if name.endswith((".gii", ".gii.gz")):
        return "gifti"
    if name.endswith((".mgh", ".mgz")):
        return "mgh"
    if name.endswith(".csv"):
        return "csv"
    if not for_writing and os.path.isfile(path):
        with open(path, "rb") as fh:
            head = fh.read(3)
        if head == _MORPH_MAGIC:
            return "morph"
        if head == _SURFACE_MAGIC:
            raise ShapeFileError(path, "is a FreeSurfer surface, not an overlay; load it with shapeot.load")
        raise ShapeFileError(path, "is not an overlay shapeot reads (FreeSurfer morph/curv, .annot, .label, "
                             ".mgh/.mgz, GIfTI .gii)")
    if for_writing:
        return "morph"  # lh.thickness and friends have no extension
    raise FileNotFoundError(f"{os.fspath(path)}: no such file")


def _n_of(surface_or_n) -> int | None:
    if surface_or_n is None:
        return None
    if isinstance(surface_or_n, (int, np.integer)):
        return int(surface_or_n)
    return int(surface_or_n.n_points)


def read_overlay(path: str | os.PathLike, surface=None, *, name: str | None = None,
                 kind: Literal["continuous", "labels"] | None = None) -> Overlay:
    """Read per-vertex values from a morph (curv), ``.annot``, ``.label``, MGH or GIfTI file.

    Parameters
    ----------
    path : str or PathLike
    surface : Shape or int, optional
        The surface the values belong to (or its vertex count): the count is checked, and a
        ``.label`` file (which lists only its vertices) needs it to know N.
    name : str, optional
        Default: the file name.
    kind : {"continuous", "labels"}, optional
        Force the kind of a GIfTI or MGH overlay (default: labels for GIfTI label arrays).

    Returns
    -------
    Overlay

    Raises
    ------
    FileNotFoundError, ShapeFileError
        A missing file, an unreadable one, or a vertex count that differs from the surface's.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    fmt = overlay_format(path)
    n = _n_of(surface)
    display = name or os.path.basename(path)
    try:
        ov = _READERS[fmt](path, display, n, kind)
    except ShapeFileError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        raise ShapeFileError(path, f"could not be read as {fmt}: {type(exc).__name__}: {exc}") from exc
    if n is not None:
        ov.check_vertices(n)
    return ov


def _read_morph(path: str, display: str, n: int | None, kind) -> Overlay:
    from nibabel import freesurfer as fs

    return Overlay(display, fs.read_morph_data(path), "continuous", source=path, format="morph")


def _read_annot(path: str, display: str, n: int | None, kind) -> Overlay:
    from nibabel import freesurfer as fs

    labels, ctab, names = fs.read_annot(path)
    names = [b.decode() if isinstance(b, bytes) else str(b) for b in names]
    return Overlay(display, labels, "labels", {i: nm for i, nm in enumerate(names)},
                   {i: (*ctab[i, :3], 255 - ctab[i, 3]) for i in range(len(names))}, path, "annot",
                   {"ctab": np.asarray(ctab)})


def _read_label(path: str, display: str, n: int | None, kind) -> Overlay:
    from nibabel import freesurfer as fs

    if n is None:
        raise ShapeFileError(path, "a .label file lists only its own vertices: give the surface "
                             "(read_overlay(path, surface)) to know the vertex count")
    vertices, scalars = fs.read_label(path, read_scalars=True)
    vertices = np.asarray(vertices, dtype=np.int64)
    if len(vertices) and (vertices.min() < 0 or vertices.max() >= n):
        raise ShapeFileError(path, f"lists vertex {vertices.max()} but the surface has {n} vertices")
    values = np.zeros(n, dtype=np.int64)
    values[vertices] = 1
    base = os.path.basename(path)[: -len(".label")]
    full = np.zeros(n)
    full[vertices] = scalars
    return Overlay(display, values, "labels", {0: "unlabelled", 1: base}, {}, path, "label", {"scalars": full})


def _read_mgh(path: str, display: str, n: int | None, kind) -> Overlay:
    import nibabel as nib

    data = np.asarray(nib.load(path).dataobj)
    if data.ndim >= 3 and all(s == 1 for s in data.shape[1:3]):
        data = data.reshape(data.shape[0], -1)
    else:
        raise ShapeFileError(path, f"is a volume of shape {data.shape}, not a surface overlay (N x 1 x 1)")
    data = data[:, 0] if data.shape[1] == 1 else data
    return Overlay(display, data, kind or "continuous", source=path, format="mgh")


def _read_gifti(path: str, display: str, n: int | None, kind) -> Overlay:
    import nibabel as nib

    img = nib.load(path)
    geometry = (nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"], nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"])
    arrays = [d for d in img.darrays if d.intent not in geometry]
    if not arrays:
        raise ShapeFileError(path, "holds no data arrays (a GIfTI surface? load it with shapeot.load)")
    cols = [np.asarray(d.data) for d in arrays]
    if any(c.ndim != 1 for c in cols) or len({len(c) for c in cols}) != 1:
        raise ShapeFileError(path, f"data arrays of shapes {[c.shape for c in cols]}: expected one value "
                             "per vertex in each")
    data = cols[0] if len(cols) == 1 else np.stack(cols, axis=1)
    is_label = arrays[0].intent == nib.nifti1.intent_codes["NIFTI_INTENT_LABEL"]
    lnames, lcolors = {}, {}
    for lab in (img.labeltable.labels if img.labeltable is not None else ()):
        lnames[int(lab.key)] = lab.label or ""
        rgba = lab.rgba
        if rgba is not None and all(c is not None for c in rgba):
            lcolors[int(lab.key)] = tuple(int(round(255 * float(c))) for c in rgba)
    meta = {"intent": int(arrays[0].intent), "array_names": [d.meta.get("Name", "") for d in arrays]}
    return Overlay(display, data, kind or ("labels" if is_label else "continuous"), lnames, lcolors, path, "gifti",
                   meta)


def _read_csv(path: str, display: str, n: int | None, kind) -> Overlay:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    if len(rows) < 2:
        raise ShapeFileError(path, "a CSV overlay needs a header row and one row per vertex")
    header = [c.strip() for c in rows[0]]
    try:
        table = np.array([[float(c) for c in r] for r in rows[1:]], dtype=np.float64)
    except ValueError as exc:
        raise ShapeFileError(path, f"a row holds a cell that is not a number ({exc})") from None
    if table.shape[1] != len(header):
        raise ShapeFileError(path, f"{len(header)} columns in the header but {table.shape[1]} in the rows")
    index = next((i for i, c in enumerate(header) if c.lower() in _INDEX_COLUMNS), None)
    cols = [i for i in range(len(header)) if i != index]
    if not cols:
        raise ShapeFileError(path, "holds a vertex column and no values")
    values = table[:, cols]
    if index is not None:
        ids = table[:, index]
        if not np.array_equal(np.sort(ids), np.arange(len(ids))):
            raise ShapeFileError(path, f"the {header[index]} column must list every vertex 0..{len(ids) - 1} once")
        values = values[np.argsort(ids)]
    names = [header[i] for i in cols]
    return Overlay(display, values[:, 0] if len(cols) == 1 else values, kind or "continuous", source=path,
                   format="csv", meta={"array_names": names})


_READERS = {"morph": _read_morph, "annot": _read_annot, "label": _read_label, "mgh": _read_mgh,
            "gifti": _read_gifti, "csv": _read_csv}


def _tkr_coords(surface) -> np.ndarray:
    """The surface's vertices in FreeSurfer tkr-RAS (c_ras removed when the surface carries it)."""
    pts = np.asarray(surface.points, dtype=np.float64)
    info = surface.meta.get("freesurfer_volume_info") if surface is not None else None
    if info and "cras" in info and str(info.get("valid", "1")).strip().startswith("1"):
        pts = pts - np.asarray(info["cras"], dtype=np.float64)
    return pts


def write_overlay(overlay: Overlay, path: str | os.PathLike, *, surface=None, overwrite: bool = False,
                  fmt: str | None = None) -> Path:
    """Write an overlay through the one safe writer (:mod:`shapeot.core.outputs`: staged, then
    created exclusively unless ``overwrite``); the format follows the name (lh.thickness: morph,
    .annot, .label, .mgh/.mgz, .gii, .csv) or ``fmt``.

    A ``.label`` file stores each labelled vertex's coordinates (tkr-RAS): give ``surface``.
    Labels written as ``.annot`` must be indices into the overlay's names (as read from an
    annot); other label values are renumbered, with their names and colours kept.
    """
    from shapeot.core.outputs import single_output

    path = Path(path)
    fmt = fmt or overlay_format(path, for_writing=True)
    if fmt not in OVERLAY_FORMATS:
        raise ValueError(f"unknown overlay format {fmt!r}; one of {OVERLAY_FORMATS}")
    with single_output(path, overwrite=overwrite) as tmp:  # keeps the name: nibabel picks GIfTI/MGH by it
        write_overlay_file(overlay, tmp, fmt, surface)
    return path


def write_overlay_file(ov: Overlay, path: str | os.PathLike, fmt: str, surface=None) -> None:
    """Write ``ov`` to ``path`` (a staged file) in ``fmt``: no existence check, no staging."""
    _WRITERS[fmt](ov, os.fspath(path), surface)


def _write_morph(ov: Overlay, path: str, surface) -> None:
    from nibabel import freesurfer as fs

    v = np.asarray(ov.values)
    if v.ndim != 1:
        raise ValueError(f"a FreeSurfer morph file holds one value per vertex; {ov.name} has {v.shape[1]}")
    fs.write_morph_data(path, v.astype(np.float32))


def _write_mgh(ov: Overlay, path: str, surface) -> None:
    import nibabel as nib

    v = np.asarray(ov.values)
    data = v.reshape(len(v), 1, 1, -1).astype(np.float32 if ov.kind == "continuous" else np.int32)
    if data.shape[3] == 1:
        data = data[..., 0]
    nib.save(nib.MGHImage(data, np.eye(4)), path)


def _write_annot(ov: Overlay, path: str, surface) -> None:
    from nibabel import freesurfer as fs

    v = np.asarray(ov.values)
    if ov.kind != "labels" or v.ndim != 1:
        raise ValueError(f"an .annot file holds one label per vertex; {ov.name} is {ov.kind} {v.shape}")
    keys = sorted(k for k in ov.label_names if k >= 0) or sorted(set(np.unique(v)) - {-1})
    ctab = ov.meta.get("ctab")
    if ov.format == "annot" and ctab is not None and len(ctab) == len(keys) and keys == list(range(len(keys))):
        labels, names, ctab = v, [ov.label_names[k] for k in keys], np.asarray(ctab)
    else:  # renumber 0..K-1 in key order; colours from the table, or generated
        index = {k: i for i, k in enumerate(keys)}
        labels = np.array([index.get(int(x), -1) for x in v], dtype=np.int64)
        names = [ov.label_names.get(k, f"label{k}") for k in keys]
        rng = np.random.default_rng(0)
        ctab = np.zeros((len(keys), 5), dtype=np.int64)
        for i, k in enumerate(keys):
            col = ov.label_colors.get(k) or (*rng.integers(0, 256, 3), 255)
            ctab[i, :4] = (*col[:3], 255 - col[3])
    fs.write_annot(path, labels.astype(np.int32), ctab.astype(np.int32), names, fill_ctab=True)


def _write_label(ov: Overlay, path: str, surface) -> None:
    v = np.asarray(ov.values)
    if surface is None:
        raise ValueError("writing a .label file needs the surface (its vertices' coordinates)")
    if len(v) != surface.n_points:
        raise ValueError(f"{ov.name} has {len(v)} values but the surface {surface.n_points} vertices")
    inside = np.flatnonzero(v.reshape(len(v), -1)[:, 0] > 0)
    xyz = _tkr_coords(surface)[inside]
    given = np.asarray(ov.meta.get("scalars", []))
    scalars = given[inside] if len(given) == len(v) else np.zeros(len(inside))
    with open(path, "w") as fh:
        fh.write(f"#!ascii label, from shapeot, coordinates tkr-RAS mm\n{len(inside)}\n")
        for i, p, s in zip(inside, xyz, scalars):
            fh.write(f"{i} {p[0]:.3f} {p[1]:.3f} {p[2]:.3f} {s:.10f}\n")


def _write_gifti(ov: Overlay, path: str, surface) -> None:
    import nibabel as nib

    gi = nib.gifti
    v = np.asarray(ov.values)
    label = ov.kind == "labels"
    intent = "NIFTI_INTENT_LABEL" if label else "NIFTI_INTENT_SHAPE"
    if not label and ov.meta.get("intent") not in (None, nib.nifti1.intent_codes["NIFTI_INTENT_LABEL"]):
        intent = int(ov.meta["intent"])
    cols = [v] if v.ndim == 1 else [v[:, j] for j in range(v.shape[1])]
    names = list(ov.meta.get("array_names", [])) or [ov.name] * len(cols)
    darrays = [gi.GiftiDataArray(np.ascontiguousarray(c.astype(np.int32 if label else np.float32)),
                                 intent=intent, datatype="NIFTI_TYPE_INT32" if label else "NIFTI_TYPE_FLOAT32",
                                 meta={"Name": names[j] if j < len(names) else ov.name})
               for j, c in enumerate(cols)]
    img = gi.GiftiImage(darrays=darrays)
    if label:
        table = gi.GiftiLabelTable()
        for k, nm in sorted(ov.label_names.items()):
            lab = gi.GiftiLabel(key=k)
            lab.label = nm
            col = ov.label_colors.get(k)
            if col is not None:
                lab.red, lab.green, lab.blue, lab.alpha = (c / 255.0 for c in col)
            table.labels.append(lab)
        img.labeltable = table
    nib.save(img, path)


def _write_csv(ov: Overlay, path: str, surface) -> None:
    from shapeot.core.outputs import write_csv_rows

    v = np.asarray(ov.values)
    cols = v.reshape(len(v), -1)
    names = list(ov.meta.get("array_names", []))
    if len(names) != cols.shape[1]:
        names = [ov.name] if cols.shape[1] == 1 else [f"{ov.name}_{j}" for j in range(cols.shape[1])]
    write_csv_rows(path, ["vertex", *names], ([i, *row] for i, row in enumerate(cols.tolist())))


_WRITERS = {"morph": _write_morph, "mgh": _write_mgh, "annot": _write_annot, "label": _write_label,
            "gifti": _write_gifti, "csv": _write_csv}
