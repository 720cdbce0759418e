"""The engine's own exceptions and warnings about its backends."""
from __future__ import annotations

__all__ = ["BackendUnavailable", "BackendFallbackWarning"]


class BackendUnavailable(RuntimeError):
    """An explicitly requested OT backend cannot run on this machine (the message says why)."""


class BackendFallbackWarning(RuntimeWarning):
    """An OT backend failed its self-test; shapeot fell back to the ``torch`` backend."""
