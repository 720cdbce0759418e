"""Exports of the desktop app: warped mesh, displacement field, correspondences, template and
modes, screenshots. Every file goes through :mod:`shapeot.core.outputs`, as the command
line's: staged in a hidden folder beside it and committed at the end, so a failure leaves
nothing half-written, with the usual permissions; no export may replace one of the opened input
files.

Single-file exports replace an existing file by default (``overwrite=True``): the app's save
dialog has already asked the user. The multi-file exports (registration, template) refuse
existing files unless ``overwrite=True``.

Registration and template exports use the library's writers
(:func:`shapeot.registration.write.write_registration`,
:func:`shapeot.templates.write.write_template`), so ``shapeot register`` / ``shapeot template``
and the app write the same files; the formats are those of ``docs/registration.md``.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "atomic_path",
    "check_not_input",
    "export_warped",
    "export_displacement",
    "export_correspondences",
    "export_registration",
    "export_template",
    "save_image",
    "array_to_qimage",
    "grab_window",
]

@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path (same name, in a hidden staging folder beside ``path``) committed to
    ``path`` when the block succeeds (:func:`shapeot.core.outputs.single_output`).

    On an exception nothing is written and ``path`` is left as it was.
    """
    from shapeot.core.outputs import single_output

    with single_output(path, overwrite=overwrite) as tmp:
        yield tmp


def check_not_input(path: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise ValueError if ``path`` is one of the ``inputs`` (inputs are never overwritten)."""
    p = Path(path).resolve()
    for q in inputs:
        if q and Path(q).resolve() == p:
            raise ValueError(f"{path} is one of the opened input files; choose another name "
                             "(inputs are never overwritten)")


def export_warped(reg, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """The warped source mesh (source faces, ``displacement`` point data); format by extension."""
    from shapeot.shapes.writing import check_output_path, write_shape

    fmt = check_output_path(path, reg.warped)
    with atomic_path(path, overwrite=overwrite) as tmp:
        write_shape(reg.warped, tmp, fmt, display=path)
    return Path(path)


def export_displacement(source, displacement: np.ndarray, path: str | os.PathLike, *, prealign=None,
                        overwrite: bool = True) -> Path:
    """A displacement field on the source's vertices.

    ``.csv``: the one layout of every front end (:data:`shapeot.registration.write.DISPLACEMENT_COLUMNS`:
    source_index, dx, dy, dz, the non-rigid part without ``prealign`` (4 x 4; None: an OT match,
    all of it) and its component along the outward normals; full precision, the source's units),
    as ``shapeot register`` writes it; any mesh extension (``.vtp`` recommended): the source mesh
    with the point array ``displacement`` (N, 3).
    """
    from shapeot.registration.write import write_displacement_csv
    from shapeot.shapes.writing import check_output_path, write_shape

    path = Path(path)
    d = np.asarray(displacement, dtype=np.float64)
    if d.shape != (source.n_points, 3):
        raise ValueError(f"displacement must be ({source.n_points}, 3); got {d.shape}")
    if path.suffix.lower() == ".csv":
        with atomic_path(path, overwrite=overwrite) as tmp:
            write_displacement_csv(tmp, source, d, prealign)
        return path
    mesh = source.replace(point_data={**dict(source.point_data), "displacement": d},
                          name=f"{source.name} displacement")
    fmt = check_output_path(path, mesh)
    with atomic_path(path, overwrite=overwrite) as tmp:
        write_shape(mesh, tmp, fmt, display=path)
    return path


def export_correspondences(correspondences, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """``source_index,target_x,target_y,target_z,target_index,mass`` (CSV, full precision, atomic)."""
    return Path(correspondences.to_csv(path, overwrite=overwrite))


def export_registration(reg, path: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Everything ``shapeot register -o PATH --json`` writes: the warped mesh, STEM_displacement.csv,
    STEM_correspondences.csv, STEM_prealign.txt and STEM_summary.json, all or none
    (:func:`shapeot.registration.write.write_registration`).

    Raises
    ------
    FileExistsError
        If one of the files exists and ``overwrite`` is False (nothing is written).
    """
    from shapeot.registration.write import output_stem, write_registration

    path = Path(path)
    return write_registration(reg, path, summary=path.with_name(f"{output_stem(path)}_summary.json"),
                              overwrite=overwrite)


def export_template(result, folder: str | os.PathLike, *, overwrite: bool = False, fmt: str = "vtp") -> list[Path]:
    """Everything ``shapeot template FOLDER -o OUT`` writes, into the folder ``folder``, all or none.

    The template mesh, every subject in the template's vertex indexing with its displacement and
    alignment, the mean and each PCA mode at -2 / +2 standard deviations (point data ``mode``:
    one standard deviation, mm), ``modes/modes.json``, ``summary.json`` and ``convergence.png``
    (:func:`shapeot.templates.write.write_template`).

    Raises
    ------
    FileExistsError
        If ``folder`` exists and ``overwrite`` is False.
    ValueError
        If ``folder`` holds one of the subjects' files (inputs are never replaced).
    """
    from shapeot.templates.write import write_template

    folder = Path(folder)
    inputs = [s.source.path for s in result.template.subjects if s.source is not None]
    check_not_input(folder, inputs)
    for p in inputs:
        if folder.resolve() in Path(p).resolve().parents:
            raise ValueError(f"{folder} holds the subjects' files; choose another folder (inputs are never replaced)")
    return write_template(result.template, folder, overwrite=overwrite, fmt=fmt)


def save_image(image, path: str | os.PathLike) -> Path:
    """Write a ``QImage`` or an (H, W, 3) uint8 array as PNG, atomically."""
    from PyQt5.QtGui import QImage

    path = Path(path)
    if not isinstance(image, QImage):
        image = array_to_qimage(image)
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"{path}: could not write the PNG image")
    return path


def array_to_qimage(array: np.ndarray):
    """An (H, W, 3) uint8 RGB array as a ``QImage`` (copied)."""
    from PyQt5.QtGui import QImage

    a = np.ascontiguousarray(np.asarray(array)[..., :3], dtype=np.uint8)
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def grab_window(window, plotter):
    """A ``QImage`` of the whole window with the 3D view's pixels painted in.

    ``QWidget.grab`` cannot read an OpenGL surface (the 3D view comes out black or stale), so
    the view is rendered by VTK (``plotter.screenshot``) and painted over its place.
    """
    from PyQt5.QtCore import QPoint, QRect
    from PyQt5.QtGui import QPainter

    image = window.grab().toImage()
    plotter.render()
    view = array_to_qimage(plotter.screenshot(return_img=True))
    origin = plotter.mapTo(window, QPoint(0, 0))
    painter = QPainter(image)
    try:
        painter.drawImage(QRect(origin, plotter.size()), view)
    finally:
        painter.end()
    return image
