"""The work the app's worker thread runs: thin calls of shapeot's public functions, no Qt, no VTK.

Every function here is what the command line does for the same action (``shapeot register``,
``shapeot match``, templates), with the library's ``progress(fraction, message) -> bool``
callback passed through. Nothing here touches widgets: results go back to the GUI thread,
which draws them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "carry_overlay",
    "template_overlay_maps",
    "ProgressCallback",
    "is_label_map",
    "scan_labels",
    "load_shape",
    "mirror_x",
    "load_overlay",
    "register_shapes",
    "MatchResult",
    "match_shapes",
    "TemplateResult",
    "build_template",
]

ProgressCallback = Callable[[float, str], bool]


def _report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Report through :class:`shapeot.core.progress.Progress`: a False return cancels."""
    from shapeot.core.progress import as_progress

    as_progress(progress)(fraction, message)


def _span(progress: ProgressCallback | None, lo: float, hi: float):
    from shapeot.core.progress import as_progress

    return as_progress(progress).span(lo, hi)


def is_label_map(path: str | os.PathLike) -> bool:
    """True for a segmented scan (NIfTI, MGH, NRRD, MetaImage), whose surfaces need a label.

    Unknown extensions return False: loading the file then reports the supported formats.
    """
    from shapeot.shapes.errors import UnsupportedFormatError
    from shapeot.shapes.filetypes import detect_format
    from shapeot.shapes.scans import SCAN_FORMATS

    try:
        return detect_format(path) in SCAN_FORMATS
    except UnsupportedFormatError:
        return False


def scan_labels(path: str | os.PathLike, progress: ProgressCallback | None = None) -> list:
    """The labels of a label map (:func:`shapeot.shapes.list_labels`), for the label chooser."""
    from shapeot.shapes import list_labels

    _report(progress, 0.0, f"reading the labels of {Path(path).name}")
    labels = list_labels(path)
    if not labels:
        from shapeot.shapes.errors import LabelNotFoundError

        raise LabelNotFoundError(path, "holds no label (every voxel is 0): no surface to extract")
    return labels


def load_shape(path: str | os.PathLike, label: int | str | None = None,
               progress: ProgressCallback | None = None):
    """Read a mesh, or the surface of ``label`` in a label map (:func:`shapeot.load`).

    Returns
    -------
    shapeot.Shape
        Named after the file, with the label appended for a scan ("labels.nii.gz [3]").

    A warning of the reader (units inferred from the shape's size) is passed on in the last
    progress message, which the app shows in its status bar, and printed as usual.
    """
    import warnings

    import shapeot
    from shapeot.shapes.units import UnitsWarning

    _report(progress, 0.0, f"reading {Path(path).name}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnitsWarning)
        shape = shapeot.load(path, label)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if label is not None:
        shape = shape.replace(name=f"{shape.name} [{label}]")
    note = "".join(f"; warning: {w.message}" for w in caught if issubclass(w.category, UnitsWarning))
    _report(progress, 1.0, f"read {shape.name}: {shape.n_points} vertices, units {shape.units}{note}")
    return shape


def load_overlay(path: str | os.PathLike, n_vertices: int, progress: ProgressCallback | None = None):
    """Read per-vertex values for a surface of ``n_vertices`` vertices
    (:func:`shapeot.shapes.read_overlay`: FreeSurfer morph files such as lh.thickness, ``.annot``,
    ``.label``, ``.mgh``/``.mgz``, GIfTI data arrays).

    Returns
    -------
    shapeot.shapes.Overlay

    Raises
    ------
    shapeot.shapes.errors.ShapeFileError
        An unreadable file, or one whose vertex count differs from ``n_vertices`` (the message
        names the file and both counts).
    """
    from shapeot.shapes.overlays import read_overlay

    _report(progress, 0.0, f"reading the overlay {Path(path).name}")
    overlay = read_overlay(path, surface=int(n_vertices))
    what = (f"{len(overlay.label_names)} labels" if overlay.kind == "labels"
            else f"values {float(overlay.values.min()):.3g} to {float(overlay.values.max()):.3g}")
    _report(progress, 1.0, f"read the overlay {overlay.name} ({overlay.format}, {what})")
    return overlay


def mirror_x(shape):
    """The shape mirrored across the mid-sagittal plane x = 0 (RAS: left <-> right hemisphere).

    Triangles are flipped so that normals still point outwards (as ``shapeot demo`` does).
    """
    faces = None if shape.faces is None else np.asarray(shape.faces)[:, ::-1].copy()
    return shape.replace(points=np.asarray(shape.points) * np.array([-1.0, 1.0, 1.0]), faces=faces,
                         name=f"{shape.name} (mirrored)")


def register_shapes(source, target, config, progress: ProgressCallback | None = None):
    """:func:`shapeot.register` (the same call as ``shapeot register``)."""
    import shapeot

    return shapeot.register(source, target, config, progress=progress)


@dataclass(frozen=True)
class MatchResult:
    """OT correspondences from ``source`` to ``target`` (:func:`shapeot.match`).

    Attributes
    ----------
    source, target : shapeot.Shape
    correspondences : shapeot.matching.Correspondences
    seconds : float
    summary : dict
        Plain numbers for the metrics table (computed in the worker: the marginal error costs
        two reductions): S_eps (mm^2), blur (mm), iterations, marginal error, displacement
        mean / median / 95th percentile (mm).
    """

    source: Any
    target: Any
    correspondences: Any
    seconds: float
    summary: dict = field(default_factory=dict)


def match_shapes(source, target, *, blur: float | None = None, reach: float | None = None,
                 scaling: float = 0.8, backend: str = "auto",
                 progress: ProgressCallback | None = None) -> MatchResult:
    """:func:`shapeot.match` (the same call as ``shapeot match``).

    ``progress`` reaches every Sinkhorn iteration, so Cancel stops the solve within one iteration.
    """
    import time

    import shapeot

    _report(progress, 0.0, f"matching {source.name} to {target.name}")
    t = time.perf_counter()
    corr = shapeot.match(source, target, blur=blur, reach=reach, scaling=scaling, backend=backend,
                         progress=_span(progress, 0.05, 0.95))
    seconds = time.perf_counter() - t
    res = corr.result
    norms = np.linalg.norm(np.asarray(corr.displacement), axis=1)
    summary = {"Sinkhorn divergence S_eps (mm²)": float(res.value), "blur (mm)": float(res.blur),
               "Sinkhorn iterations": float(res.n_iterations), "plan marginal error": float(res.marginal_error),
               "OT displacement, mean (mm)": float(norms.mean()),
               "OT displacement, median (mm)": float(np.median(norms)),
               "OT displacement, 95th percentile (mm)": float(np.percentile(norms, 95)),
               "time (s)": seconds}
    if res.reach is not None:
        summary["reach (mm)"] = float(res.reach)
    _report(progress, 1.0, f"matched in {seconds:.1f} s")
    return MatchResult(source, target, corr, seconds, summary)


@dataclass(frozen=True)
class TemplateResult:
    """A population template and the folder it was built from.

    Attributes
    ----------
    template : shapeot.Template
        ``shape``, ``subjects``, ``alignments`` (subject -> template frame), ``modes``,
        ``distances``, ``history``.
    skipped : list of shapeot.templates.SkippedFile
        Files of the folder that could not be read, and why.
    folder : Path or None
    """

    template: Any
    skipped: list = field(default_factory=list)
    folder: Path | None = None

    @property
    def subjects(self) -> list:
        """The subjects, in their own coordinates."""
        return list(self.template.subjects)

    def aligned_subjects(self) -> list:
        """The subjects moved into the template frame by their Procrustes alignment."""
        out = []
        for shape, m in zip(self.template.subjects, np.asarray(self.template.alignments)):
            pts = np.asarray(shape.points) @ m[:3, :3].T + m[:3, 3]
            out.append(shape.with_points(pts, weights=shape.weights))
        return out


def build_template(folder: str | os.PathLike, *, config=None, pattern: str | None = None,
                   label: int | str | None = None, executor=None,
                   progress: ProgressCallback | None = None) -> TemplateResult:
    """Read every shape of ``folder`` (:func:`shapeot.load_folder`) and build their template
    (:func:`shapeot.template`), as the library does for a folder path.

    Reading takes the first 5 % of the progress, the template the rest (reported per subject).
    """
    import shapeot

    _report(progress, 0.0, f"reading {folder}")
    loaded = shapeot.load_folder(folder, pattern=pattern, label=label)
    skipped = f", skipped {len(loaded.skipped)}" if loaded.skipped else ""
    _report(progress, 0.05, f"read {len(loaded)} shapes{skipped}")
    tpl = shapeot.template(loaded, config=config, executor=executor, progress=_span(progress, 0.05, 1.0))
    return TemplateResult(tpl, list(loaded.skipped), Path(folder))


def carry_overlay(overlay, reg, path: str | os.PathLike, *, overwrite: bool = False,
                  progress: ProgressCallback | None = None):
    """The source's ``overlay`` carried onto the target's vertices with the registration's map
    (:func:`shapeot.registration.transfer.transfer_with_map`, the resampling of ``shapeot
    transfer``), written to ``path`` in its format. Returns (the carried Overlay, [path])."""
    from shapeot.registration.transfer import transfer_with_map
    from shapeot.shapes.overlays import overlay_format, write_overlay_file

    _report(progress, 0.0, f"carrying {overlay.name} onto {reg.target.name}")
    moved = transfer_with_map(overlay, reg.source, reg.target, reg.deformation)
    _report(progress, 0.8, f"writing {path}")
    fmt = overlay_format(path, for_writing=True)
    from shapeot.core.outputs import single_output

    with single_output(path, overwrite=overwrite) as tmp:
        write_overlay_file(moved, tmp, fmt, surface=reg.target)
    return moved, [Path(path)]


def template_overlay_maps(result: TemplateResult, name: str, path: str | os.PathLike, *, overwrite: bool = False,
                          progress: ProgressCallback | None = None):
    """The subjects' overlay ``name`` (looked up in their FreeSurfer subject folders) averaged on
    the template: mean and SD (labels: mode and agreement), written beside ``path`` with the tag
    before the suffix (``lh.thickness.mean``). Returns ({tag: Overlay}, [paths])."""
    from shapeot.core.outputs import OutputSet
    from shapeot.shapes.overlays import overlay_format, write_overlay_file
    from shapeot.templates.overlays import subject_overlays, template_overlays
    from shapeot.templates.write import overlay_file_name

    _report(progress, 0.0, f"reading {name} of {len(result.subjects)} subjects")
    maps = template_overlays(result.template, subject_overlays(result.template, name))
    _report(progress, 0.8, "writing")
    base = Path(path)
    with OutputSet(overwrite=overwrite) as outputs:
        for tag, ov in maps.items():
            morph = ov.format == "morph" and overlay_format(base, for_writing=True) != "morph"
            out = base.with_name(overlay_file_name(base.name, tag, morph=morph))
            write_overlay_file(ov, outputs.stage(out), overlay_format(out, for_writing=True),
                               surface=result.template.shape)
        written = outputs.commit()
    return maps, written
