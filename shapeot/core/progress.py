"""Progress reporting and cancellation: the one rule every long operation follows.

A long operation (an OT solve, a registration, a template, a batch, the app's worker, the
Slicer module) accepts ``progress: Callable[[float, str], bool | None]``, calls it often with the
fraction done in [0, 1] and a message, and stops when the callback returns ``False`` (``None``,
what a callback that returns nothing gives, never cancels) by raising :class:`Cancelled` after
cleaning up. :class:`Progress` applies that rule and maps the fraction of one part of the work
onto the whole run, so nested stages report one monotone bar.
"""
from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

ProgressCallback = Callable[[float, str], "bool | None"]

__all__ = ["ProgressCallback", "Progress", "as_progress"]


class Progress:
    """Maps the fraction done of one stage onto the whole run's [0, 1] and checks for cancel.

    ``Progress(callback).span(0.2, 0.8)`` reports 0 -> 0.2 and 1 -> 0.8. A callback returning
    False (not None: a callback that returns nothing never cancels) raises :class:`Cancelled`.
    ``Progress(None)`` reports nothing and never cancels.

    Examples
    --------
    >>> seen = []
    >>> p = Progress(lambda f, m: seen.append((round(f, 2), m)))
    >>> p.span(0.5, 1.0)(0.5, "half of the second half")
    >>> seen
    [(0.75, 'half of the second half')]
    """

    def __init__(self, callback: ProgressCallback | None = None, lo: float = 0.0, hi: float = 1.0):
        if callback is not None and not callable(callback):
            raise ValueError(f"progress must be a callable(fraction, message) or None; got {type(callback).__name__}")
        self._callback, self._lo, self._hi = callback, float(lo), float(hi)

    def __call__(self, fraction: float, message: str) -> None:
        if self._callback is None:
            return
        f = self._lo + (self._hi - self._lo) * min(max(float(fraction), 0.0), 1.0)
        if self._callback(f, message) is False:
            raise Cancelled(f"cancelled during: {message}")

    def span(self, lo: float, hi: float) -> "Progress":
        """The sub-reporter for the part [lo, hi] of this one."""
        w = self._hi - self._lo
        return Progress(self._callback, self._lo + lo * w, self._lo + hi * w)

    def with_message(self, message: str) -> Callable[[float, str], None]:
        """A ``progress(fraction, _)`` that reports ``message`` whatever the callee says (for
        engine calls whose own messages mean nothing to the user)."""
        return lambda fraction, _message=None: self(fraction, message)


def as_progress(progress: "ProgressCallback | Progress | None") -> Progress:
    """``progress`` as a :class:`Progress` (itself when it is one already)."""
    return progress if isinstance(progress, Progress) else Progress(progress)
