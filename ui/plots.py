"""The convergence plot: loss per iteration of a registration or a template, on a matplotlib Qt canvas.

Uses ``matplotlib.figure.Figure`` directly (no pyplot: no global figure registry, no backend
switching at import).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PyQt5.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

__all__ = ["ConvergencePlot", "Series", "history_series"]


@dataclass(frozen=True)
class Series:
    """One curve of the plot: x (rounds), y (values), drawn as a line or as separate markers."""

    label: str
    x: np.ndarray
    y: np.ndarray
    markers_only: bool = False


def _label(entry) -> tuple[str, bool]:
    """(the series an entry belongs to, whether that series is drawn as markers only)."""
    if entry.stage == "prealign":
        if entry.phase == "search":  # each start is its own short run: markers, never one zig-zag line
            return "pre-alignment starts", True
        return "pre-alignment, best start", False
    if entry.stage == "nonrigid":
        return f"non-rigid level {(entry.level or 0) + 1}", False
    return {"finetune": "fine-tuning", "procrustes": "Procrustes: largest change (mm)",
            "template": "template: move along the normals (mm)"}[entry.stage], False


def history_series(history: Sequence) -> dict[str, Series]:
    """The curves of a registration's or a template's history (:class:`HistoryEntry` list).

    Registrations: x is the round's place in the whole run, so the stages follow one another;
    the pre-alignment's starts are separate markers, each non-rigid level its own curve.
    Templates: the Procrustes rounds and the template iterations are two series, each numbered
    from 1 (their largest change and their move, both in mm). Non-finite values are skipped.
    """
    points: dict[str, tuple[list, list, bool]] = {}
    template = any(h.stage in ("procrustes", "template") for h in history)
    for i, h in enumerate(history):
        label, markers = _label(h)
        value = h.extra.get("change_mm", h.value) if h.stage == "procrustes" else h.value
        if value is None or not np.isfinite(value):
            continue
        xs, ys, _ = points.setdefault(label, ([], [], markers))
        xs.append(len(xs) + 1 if template else i + 1)
        ys.append(float(value))
    return {k: Series(k, np.asarray(x), np.asarray(y), m) for k, (x, y, m) in points.items()}


class ConvergencePlot(QWidget):
    """Loss against iteration, one colour per stage, logarithmic when every value is positive."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.6), dpi=90, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.axes = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.series: dict[str, Series] = {}
        self.clear()

    def clear(self) -> None:
        """An empty plot."""
        self.series = {}
        ax = self.axes
        ax.clear()
        ax.set_axis_on()
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.text(0.5, 0.5, "no result yet", transform=ax.transAxes, ha="center", va="center", color="0.5")
        self.canvas.draw_idle()

    def set_message(self, text: str, *, title: str = "") -> None:
        """No curve to draw (e.g. one OT solve): show ``text`` instead."""
        self.series = {}
        ax = self.axes
        ax.clear()
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=10)
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True)
        self.canvas.draw_idle()

    def set_history(self, history: Sequence, *, title: str = "", ylabel: str = "loss",
                    xlabel: str = "round") -> None:
        """Plot a registration's or a template's ``history`` (see :func:`history_series`)."""
        self.series = history_series(history)
        ax = self.axes
        ax.clear()
        ax.set_axis_on()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=10)
        if not self.series:
            ax.text(0.5, 0.5, "no iterations recorded", transform=ax.transAxes, ha="center", va="center")
        positive = True
        for s in self.series.values():
            ax.plot(s.x, s.y, "o" if s.markers_only else ".-", ms=3, lw=1, label=s.label)
            positive &= bool(len(s.y) and (s.y > 0).all())
        if self.series and positive:
            ax.set_yscale("log")
        if self.series:
            ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        self.canvas.draw_idle()
