"""Exceptions that every layer of shapeot raises or catches."""
from __future__ import annotations

__all__ = ["Cancelled"]


class Cancelled(Exception):
    """A long operation was cancelled by its ``progress`` callback returning False.

    Raised after cleaning up: no partial output file is left behind.
    """
