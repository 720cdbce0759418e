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
        """A few lines for people: what loaded, what was skipped and why. Files of types that
        are neither meshes nor label maps (notes, tables, arrays) are summed up in one line."""
        other = [s for s in self.skipped if s.reason == _NOT_A_SHAPE]
        failed = [s for s in self.skipped if s.reason != _NOT_A_SHAPE]
        lines = [f"{self.folder}: {len(self.shapes)} shape(s) loaded"
                 + (f", {len(failed)} file(s) skipped" if failed else "")]
        lines += [f"  skipped {os.path.relpath(s.path, self.folder)}: {s.reason}" for s in failed]
        if other:
            kinds = sorted({Path(s.path).suffix or Path(s.path).name for s in other})
            lines.append(f"  ignored {len(other)} file(s) that are not meshes or label maps ({', '.join(kinds)})")
        return "\n".join(lines)


_NOT_A_SHAPE = "not a mesh or a label map (unknown file type)"


def _entries(root: Path, pattern: str | None) -> list[Path]:
    """The candidates, sorted: a pattern with a "/" is a glob below ``root``
    (``"*/surf/lh.pial"``); otherwise the folder's own entries, filtered by name."""
    if pattern is not None and ("/" in pattern or "**" in pattern):
        return sorted((p for p in root.glob(pattern) if p.is_file()), key=lambda p: p.relative_to(root).parts)
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    if pattern is not None:
        entries = [p for p in entries if fnmatch.fnmatch(p.name, pattern)]
    return entries


def _label(label):
    if isinstance(label, str) and label.strip().lstrip("-").isdigit():
        return int(label)
    return label


def load_folder(folder: str | os.PathLike, pattern: str | None = None, label: int | str | None = None,
                *, surf: str = "lh.pial", units: str | None = None, to_units: str | None = None,
                **options) -> LoadedFolder:
    """Load every mesh or label map of a folder as one shape each, and the surface ``surf`` of
    every FreeSurfer subject folder in it (a subfolder with ``surf/``: a SUBJECTS_DIR).

    Every entry that matches ``pattern`` is tried in name order with :func:`shapeot.load`; a
    file that fails (an unknown extension, a corrupt file, a scan without ``label``, a
    multi-label scan when no label is given, a subject without ``surf``, ...) is recorded in
    ``skipped`` with the reason, and the rest go on. Other subfolders and hidden files (names
    starting with ".") are ignored.

    Parameters
    ----------
    folder : str or PathLike
    pattern : str or None, default: None
        A shell pattern on the names (``"subject_*.gii"``, ``"sub-*"`` for subject folders);
        with a "/" it is a path pattern below the folder (``"*/surf/lh.white"``,
        ``"**/*.vtp"``) and only the files it matches are tried. None tries every entry.
    label : int, str or None, default: None
        For label maps: the label value (or segment name) to extract, the same for every scan;
        ignored for meshes. A string of digits is read as a value.
    surf : str, default: "lh.pial"
        The surface read from each FreeSurfer subject folder (a file of its ``surf/``; points in
        scanner RAS, see :func:`shapeot.shapes.freesurfer.load_subject`).
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
    from shapeot.shapes.freesurfer import is_subject_dir

    label = _label(label)
    shapes, paths, skipped = [], [], []
    for path in _entries(root, pattern):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        subject = path.is_dir() and is_subject_dir(path)
        if path.is_dir() and not subject:
            continue
        try:
            shape = load(path, label, units=units, surf=surf, **options)  # a subject folder gives its surf
            if to_units is not None:
                shape = shape.to_units(to_units)
        except UnsupportedFormatError:
            skipped.append(SkippedFile(str(path), _NOT_A_SHAPE))
            continue
        except (ValueError, OSError, ImportError) as exc:  # ShapeFileError & co are ValueErrors
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append(SkippedFile(str(path), reason[len(prefix):] if reason.startswith(prefix) else reason))
            continue
        shapes.append(shape)
        paths.append(str(path / "surf" / surf) if subject else str(path))
    result = LoadedFolder(str(root), tuple(shapes), tuple(paths), tuple(skipped))
    if len(shapes) < 2:
        what = "no file" if pattern is None else f"no file matching {pattern!r}"
        detail = "; ".join(f"{os.path.basename(s.path)}: {s.reason}" for s in skipped) or what
        hint = f" (label {label!r} for the scans)" if label is not None else ""
        raise TemplateInputError(
            f"{root}: {len(shapes)} shape(s) loaded{hint}, a template needs at least two; skipped: {detail}",
            result)
    return result
