"""The metrics table: a registration's metrics before and after (``Registration.metrics``), or the
numbers of a match or a template."""
from __future__ import annotations

from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

__all__ = ["MetricsTable", "metric_rows"]

def metric_rows(metrics: dict, units: str = "mm") -> list[tuple[str, str, str]]:
    """(label, before, after) rows of a ``{"before": {...}, "after": {...}}`` dict, every metric
    of :data:`shapeot.metrics.METRICS` present (the command line's brief table is a subset)."""
    from shapeot.metrics.table import metric_rows as rows

    return [(label, before, after) for _, label, before, after in rows(metrics or {}, units=units)]


def _fmt(value) -> str:
    from shapeot.metrics.table import format_value

    return format_value(value)


class MetricsTable(QTableWidget):
    """Three columns: metric, before, after (mm unless stated)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["metric", "before", "after"])
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.setAlternatingRowColors(True)

    def set_metrics(self, metrics: dict, units: str = "mm") -> None:
        """Show a ``{"before": {...}, "after": {...}}`` dict (empty: clears the table)."""
        self._fill(["metric", "before", "after"], metric_rows(metrics or {}, units))

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
