"""The convergence plot: loss per iteration of a registration or a template, on a matplotlib Qt canvas.

Uses ``matplotlib.figure.Figure`` directly (no pyplot: no global figure registry, no backend
switching at import).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PyQt5.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

__all__ = ["ConvergencePlot", "history_series"]

#: Keys tried, in order, for the value of one history entry.
VALUE_KEYS = ("loss", "move_normal_rms_mm", "move_rms_mm", "change_mm", "value")
STAGE_NAMES = {"prealign": "pre-alignment", "nonrigid": "non-rigid", "finetune": "fine-tuning",
               "procrustes": "Procrustes: loss", "template": "template: surface move (mm)"}


def history_series(history: Sequence[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split a ``history`` (list of dicts) into one (iteration numbers, values) series per stage.

    Entries without a numeric value (see :data:`VALUE_KEYS`) are skipped; entries without a
    "stage" key belong to the series "" (templates).
    """
    series: dict[str, tuple[list, list]] = {}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            continue
        value = next((entry[k] for k in VALUE_KEYS if isinstance(entry.get(k), (int, float, np.floating))), None)
        if value is None or not np.isfinite(value):
            continue
        xs, ys = series.setdefault(str(entry.get("stage", "")), ([], []))
        xs.append(i + 1)
        ys.append(float(value))
    return {k: (np.asarray(x), np.asarray(y)) for k, (x, y) in series.items()}


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
        self.series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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

    def set_history(self, history: Sequence[dict], *, title: str = "", ylabel: str = "loss") -> None:
        """Plot a registration's or a template's ``history``."""
        self.series = history_series(history)
        ax = self.axes
        ax.clear()
        ax.set_axis_on()
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=10)
        if not self.series:
            ax.text(0.5, 0.5, "no iterations recorded", transform=ax.transAxes, ha="center", va="center")
        positive = True
        for stage, (x, y) in self.series.items():
            ax.plot(x, y, ".-", ms=3, lw=1, label=STAGE_NAMES.get(stage, stage) or None)
            positive &= bool(len(y) and (y > 0).all())
        if self.series and positive:
            ax.set_yscale("log")
        if any(STAGE_NAMES.get(s, s) for s in self.series):
            ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        self.canvas.draw_idle()
