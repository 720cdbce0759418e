"""Exports of the desktop app: warped mesh, displacement field, correspondences, template and
modes, screenshots. Every file is written atomically (to a hidden temporary name in the target
folder, then renamed), so a failure leaves nothing half-written, and no export may replace one
of the opened input files.

Registration and template exports reuse the command line's writers (``shapeot register`` and
``shapeot template`` write the same files); the formats are those of ``docs/registration.md``.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
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

DISPLACEMENT_HEADER = "source_index,dx,dy,dz"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same extension) that replaces ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.lower().endswith((".gii.gz", ".nii.gz")) else path.suffix
    # Not mkstemp: the writer creates the file, so it gets the usual permissions (umask), not 0600.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_not_input(path: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise ValueError if ``path`` is one of the ``inputs`` (inputs are never overwritten)."""
    p = Path(path).resolve()
    for q in inputs:
        if q and Path(q).resolve() == p:
            raise ValueError(f"{path} is one of the opened input files; choose another name "
                             "(inputs are never overwritten)")


def export_warped(reg, path: str | os.PathLike) -> Path:
    """The warped source mesh (source faces, ``displacement`` point data); format by extension."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    reg.warped.save(path, overwrite=True)
    return Path(path)


def export_displacement(source, displacement: np.ndarray, path: str | os.PathLike) -> Path:
    """A displacement field on the source's vertices.

    ``.csv``: ``source_index,dx,dy,dz`` (mm), as ``shapeot register``; any mesh extension
    (``.vtp`` recommended): the source mesh with the point array ``displacement`` (N, 3).
    """
    path = Path(path)
    d = np.asarray(displacement, dtype=np.float64)
    if d.shape != (source.n_points, 3):
        raise ValueError(f"displacement must be ({source.n_points}, 3); got {d.shape}")
    if path.suffix.lower() == ".csv":
        with atomic_path(path) as tmp:
            np.savetxt(tmp, np.column_stack([np.arange(len(d)), d]), delimiter=",",
                       fmt=["%d", "%.6f", "%.6f", "%.6f"], header=DISPLACEMENT_HEADER, comments="")
        return path
    mesh = source.replace(point_data={**dict(source.point_data), "displacement": d},
                          name=f"{source.name} displacement")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.save(path, overwrite=True)
    return path


def export_correspondences(correspondences, path: str | os.PathLike) -> Path:
    """``source_index,target_x,target_y,target_z,target_index,mass`` (CSV, atomic)."""
    return Path(correspondences.to_csv(path))


def export_registration(reg, path: str | os.PathLike) -> list[Path]:
    """Everything ``shapeot register -o PATH --json`` writes: the warped mesh, STEM_displacement.csv,
    STEM_correspondences.csv, STEM_prealign.txt and STEM_summary.json, all or none."""
    from shapeot.cli import _stem, _write_registration

    path = Path(path)
    return _write_registration(reg, path, path.with_name(f"{_stem(path)}_summary.json"))


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
