"""Exceptions shared by every layer of shapeot."""
from __future__ import annotations


class Cancelled(Exception):
    """A long operation was cancelled by its ``progress`` callback returning False.

    Raised after cleaning up: no partial output file is left behind.
    """


class BackendUnavailable(RuntimeError):
    """An explicitly requested OT backend cannot run on this machine (the message says why)."""


class BackendFallbackWarning(RuntimeWarning):
    """An OT backend failed its self-test; shapeot fell back to the ``torch`` backend."""
