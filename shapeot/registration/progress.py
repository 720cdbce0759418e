"""Progress reporting and cancellation for long operations (DESIGN.md: ``progress(fraction, message)``)."""
from __future__ import annotations

from collections.abc import Callable

from shapeot.errors import Cancelled

ProgressCallback = Callable[[float, str], bool]

__all__ = ["ProgressCallback", "Progress"]


class Progress:
    """Maps the fraction done of one stage onto the whole run's [0, 1] and checks for cancel.

    ``Progress(callback).span(0.2, 0.8)`` reports 0 -> 0.2 and 1 -> 0.8. A callback returning
    False (not None: a callback that returns nothing never cancels) raises :class:`Cancelled`.
    """

    def __init__(self, callback: ProgressCallback | None, lo: float = 0.0, hi: float = 1.0):
        self._callback, self._lo, self._hi = callback, lo, hi

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
