"""Exceptions raised by :mod:`shapeot.shapes`.

Every problem with the *content* of an input (a corrupt file, NaN coordinates, a label that is
not in the scan, ...) is a :class:`ValueError`, so callers can catch one type; the subclasses say
more and always name the file.
"""
from __future__ import annotations

from os import PathLike


class ShapeError(ValueError):
    """Invalid shape data: wrong array shapes, non-finite coordinates, bad face indices, ..."""


class ShapeFileError(ShapeError):
    """A file could not be turned into a Shape (or a Shape into that file).

    Parameters
    ----------
    path : str or PathLike
        The file concerned; it is always part of the message.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str | PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsupportedFormatError(ShapeFileError):
    """The file's extension names no format that shapeot reads (or writes)."""


class LabelNotFoundError(ShapeFileError):
    """The requested label is not present in the label map.

    ``labels`` holds the :class:`~shapeot.shapes.Label` records that *are* present, and the
    message lists them.
    """

    def __init__(self, path: str | PathLike, problem: str, labels: list | tuple = ()) -> None:
        self.labels = list(labels)
        super().__init__(path, problem)


class MissingDependencyError(ImportError):
    """An optional package needed for this operation is not installed (the message says which)."""
