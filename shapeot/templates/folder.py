"""Load a folder of meshes or label maps as the subjects of a template: :func:`load_folder`."""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["load_folder", "LoadedFolder", "SkippedFile", "TemplateInputError"]


class TemplateInputError(ValueError):
    """The inputs cannot make a template (too few shapes, mixed units, ...); the message says
    which file or argument and what to do. ``folder`` holds the :class:`LoadedFolder` report
    when the shapes came from a folder."""

    def __init__(self, message: str, folder: "LoadedFolder | None" = None):
        super().__init__(message)
        self.folder = folder


@dataclass(frozen=True)
class SkippedFile:
    """A file of the folder that did not become a subject, and why (a sentence to act on)."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadedFolder:
    """The shapes of a folder (sorted by file name) and the files that were skipped.

    Behaves as the sequence of its shapes: ``len(f)``, ``f[0]``, ``list(f)``, and can be given
    to :func:`shapeot.template` directly.

    Attributes
    ----------
    folder : str
    shapes : tuple of Shape
        Coordinates in RAS mm, ``source`` set to the file (and label).
    paths : tuple of str
        The file of each shape.
    skipped : tuple of SkippedFile
    """

    folder: str
    shapes: tuple
    paths: tuple
    skipped: tuple

    def __len__(self) -> int:
        return len(self.shapes)

    def __iter__(self) -> Iterator:
        return iter(self.shapes)

    def __getitem__(self, i):
        return self.shapes[i]

    def report(self) -> str:
        """A few lines for people: what loaded, what was skipped and why."""
        lines = [f"{self.folder}: {len(self.shapes)} shape(s) loaded, {len(self.skipped)} file(s) skipped"]
        lines += [f"  skipped {os.path.basename(s.path)}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def _label(label):
    if isinstance(label, str) and label.strip().lstrip("-").isdigit():
        return int(label)
    return label


def load_folder(folder: str | os.PathLike, pattern: str | None = None, label: int | str | None = None,
                *, units: str | None = None, to_units: str | None = None, **options) -> LoadedFolder:
    """Load every mesh or label map of a folder (not its subfolders) as one shape each.

    Every file that matches ``pattern`` is tried in name order with :func:`shapeot.load`; a
    file that fails (an unknown extension, a corrupt file, a scan without ``label``, a
    multi-label scan when no label is given, ...) is recorded in ``skipped`` with the reason,
    and the rest go on. Hidden files (names starting with ".") are ignored.

    Parameters
    ----------
    folder : str or PathLike
    pattern : str or None, default: None
        A shell pattern on the file names (``"subject_*.gii"``); None tries every file.
    label : int, str or None, default: None
        For label maps: the label value (or segment name) to extract, the same for every scan;
        ignored for meshes. A string of digits is read as a value.
    units : str or None, default: None
        Units of the files' coordinates where a file does not state them (see
        :func:`shapeot.load`); None: stated by the file, else inferred with a warning.
    to_units : str or None, default: None
        Convert every shape to these units (:meth:`Shape.to_units`). Without it, shapes in
        different units make :func:`shapeot.template` refuse.
    **options
        Passed to :func:`shapeot.load` for label maps (``smooth`` (mm), ``n_points``,
        ``method``).

    Returns
    -------
    LoadedFolder
        ``shapes`` (in mm), ``paths``, ``skipped`` (path, reason) and a ``report()``.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist; NotADirectoryError if it is a file.
    TemplateInputError
        (a ``ValueError``) if fewer than two shapes load; the message lists the skipped files
        and the reasons, and ``.folder`` holds the report.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if to_units is not None:
        from shapeot.shapes.units import check_units

        to_units = check_units(to_units)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: is a file, not a folder; give the folder that holds the subjects")
    from shapeot.shapes import UnsupportedFormatError, load

    label = _label(label)
    shapes, paths, skipped = [], [], []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.is_dir():
            continue
        if pattern is not None and not fnmatch.fnmatch(path.name, pattern):
            continue
        try:
            shape = load(path, label, units=units, **options)
            if to_units is not None:
                shape = shape.to_units(to_units)
        except UnsupportedFormatError:
            skipped.append(SkippedFile(str(path), "not a mesh or a label map (unknown file type)"))
            continue
        except (ValueError, OSError, ImportError) as exc:  # ShapeFileError & co are ValueErrors
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append(SkippedFile(str(path), reason[len(prefix):] if reason.startswith(prefix) else reason))
            continue
        shapes.append(shape)
        paths.append(str(path))
    result = LoadedFolder(str(root), tuple(shapes), tuple(paths), tuple(skipped))
    if len(shapes) < 2:
        what = "no file" if pattern is None else f"no file matching {pattern!r}"
        detail = "; ".join(f"{os.path.basename(s.path)}: {s.reason}" for s in skipped) or what
        hint = f" (label {label!r} for the scans)" if label is not None else ""
        raise TemplateInputError(
            f"{root}: {len(shapes)} shape(s) loaded{hint}, a template needs at least two; skipped: {detail}",
            result)
    return result
