"""The metrics table: a registration's metrics before and after (``Registration.metrics``), or the
numbers of a match or a template."""
from __future__ import annotations

from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

__all__ = ["MetricsTable", "metric_rows"]

#: (key, label) of the before/after distances, in display order (the CLI's table, mm).
DISTANCES = (
    ("chamfer", "Chamfer, point-to-point"),
    ("chamfer_surface", "Chamfer, point-to-surface"),
    ("hausdorff", "Hausdorff, point-to-point"),
    ("hausdorff_surface", "Hausdorff, point-to-surface"),
    ("hd95", "HD95, point-to-point"),
    ("hd95_surface", "HD95, point-to-surface"),
    ("tre_mean", "landmark TRE, mean"),
    ("tre_max", "landmark TRE, max"),
)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return str(value)


def metric_rows(metrics: dict) -> list[tuple[str, str, str]]:
    """(label, before, after) rows of a ``{"before": {...}, "after": {...}}`` dict.

    Known distances come first with readable names; any other number follows under its key
    (area ratios, Jacobians, folds, template statistics).
    """
    before, after = metrics.get("before", {}) or {}, metrics.get("after", {}) or {}
    rows, seen = [], set()
    for key, label in DISTANCES:
        if key in before or key in after:
            rows.append((label, _fmt(before.get(key)), _fmt(after.get(key))))
            seen.add(key)
    for key in list(before) + [k for k in after if k not in before]:
        if key in seen:
            continue
        b, a = before.get(key), after.get(key)
        if all(v is None or isinstance(v, (int, float)) for v in (b, a)):
            rows.append((key.replace("_", " "), _fmt(b), _fmt(a)))
            seen.add(key)
    return rows


class MetricsTable(QTableWidget):
    """Three columns: metric, before, after (mm unless stated)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["metric", "before", "after"])
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.setAlternatingRowColors(True)

    def set_metrics(self, metrics: dict) -> None:
        """Show a ``{"before": {...}, "after": {...}}`` dict (empty: clears the table)."""
        self._fill(["metric", "before", "after"], metric_rows(metrics or {}))

    def set_values(self, values: dict) -> None:
        """Show plain ``{name: number}`` results (a match, a template): two columns."""
        self._fill(["quantity", "value"], [(k, _fmt(v)) for k, v in values.items()])

    def _fill(self, header: list[str], rows: list[tuple[str, ...]]) -> None:
        self.setColumnCount(len(header))
        self.setHorizontalHeaderLabels(header)
        self.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.setItem(r, c, item)
        self.resizeColumnsToContents()
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)

    def rows(self) -> list[tuple[str, ...]]:
        """The table's text, row by row (for tests and copy)."""
        return [tuple(self.item(r, c).text() for c in range(self.columnCount())) for r in range(self.rowCount())]
