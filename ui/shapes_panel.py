"""The shapes panel: the opened shapes with their visibility, colour and opacity, what they are
coloured by (plain colour or one of their overlays), the choice of source and target, and
Remove / Mirror / Overlay buttons.

The panel keeps no copy of any value: it writes to the :class:`~shapeot.ui.model.ShapeList` and
redraws itself from the model's events, so a change made elsewhere (a test, the app after a
registration) shows here too.
"""
from __future__ import annotations

from collections.abc import Callable

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor, QIcon, QPixmap
from PyQt5.QtWidgets import (
    QColorDialog,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .model import ShapeItem, ShapeList

__all__ = ["ShapesPanel"]


def _swatch(colour: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(colour))
    return QIcon(pix)


class ShapesPanel(QWidget):
    """List of shapes (tick = visible), style of the selected one, source / target choice.

    Parameters
    ----------
    shapes : ShapeList
    mirror : callable(ShapeItem), optional
        What the "Mirror L/R" button does with the selected shape (the window adds the mirrored
        copy); the button is hidden without it.
    load_overlay : callable(ShapeItem), optional
        What the "Overlay…" button does with the selected shape (the window asks for a file and
        reads it); the button is hidden without it.

    Attributes
    ----------
    colour_by : QComboBox
        "plain colour", then the selected shape's overlays: what its actor is coloured by.

    Signals
    -------
    selection_changed(object)
        The selected :class:`ShapeItem`, or None.
    """

    selection_changed = pyqtSignal(object)

    def __init__(self, shapes: ShapeList, *, mirror: Callable[[ShapeItem], None] | None = None,
                 load_overlay: Callable[[ShapeItem], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shapes = shapes
        self._mirror = mirror
        self._load_overlay = load_overlay
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        self.list = QListWidget()
        self.list.setObjectName("shapes_list")
        self.list.setToolTip("Tick to show, untick to hide; select to edit colour and opacity")
        self.list.itemChanged.connect(self._item_ticked)
        self.list.currentRowChanged.connect(self._row_changed)
        layout.addWidget(self.list, 1)

        style = QFormLayout()
        self.colour_button = QPushButton("Colour…")
        self.colour_button.clicked.connect(self._pick_colour)
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setObjectName("opacity")
        self.opacity.setRange(0, 100)
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.colour_by = QComboBox()
        self.colour_by.setObjectName("colour_by")
        self.colour_by.setToolTip("Colour the selected shape by one of its overlays (thickness, curvature, "
                                  "a parcellation…) or by its plain colour")
        self.colour_by.activated.connect(self._colour_by_chosen)
        style.addRow("colour", self.colour_button)
        style.addRow("opacity", self.opacity)
        style.addRow("colour by", self.colour_by)
        layout.addLayout(style)

        buttons = QHBoxLayout()
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("remove_button")
        self.remove_button.clicked.connect(self._remove)
        buttons.addWidget(self.remove_button)
        self.mirror_button = QPushButton("Mirror L/R")
        self.mirror_button.setToolTip("Add a copy mirrored across x = 0 (a right hemisphere as a left one)")
        self.mirror_button.clicked.connect(self._mirror_selected)
        self.mirror_button.setVisible(mirror is not None)
        buttons.addWidget(self.mirror_button)
        self.overlay_button = QPushButton("Overlay…")
        self.overlay_button.setObjectName("overlay_button")
        self.overlay_button.setToolTip("Load per-vertex values onto the selected shape (lh.thickness, lh.curv, "
                                       ".annot, .label, .mgh, GIfTI) and colour it by them")
        self.overlay_button.clicked.connect(self._overlay_selected)
        self.overlay_button.setVisible(load_overlay is not None)
        buttons.addWidget(self.overlay_button)
        layout.addLayout(buttons)

        roles = QFormLayout()
        self.source_combo, self.target_combo = QComboBox(), QComboBox()
        self.source_combo.setObjectName("source_combo")
        self.target_combo.setObjectName("target_combo")
        self.source_combo.setToolTip("The shape that moves (Register, Match)")
        self.target_combo.setToolTip("The shape it is registered onto")
        self.source_combo.activated.connect(lambda i: self._role_chosen("source", i))
        self.target_combo.activated.connect(lambda i: self._role_chosen("target", i))
        roles.addRow(QLabel("source"), self.source_combo)
        roles.addRow(QLabel("target"), self.target_combo)
        layout.addLayout(roles)

        shapes.added.connect(lambda item: self._rebuild())
        shapes.removed.connect(lambda item: self._rebuild())
        shapes.events.visible.connect(self._visible_changed)
        shapes.events.colour.connect(self._colour_changed)
        shapes.events.opacity.connect(self._opacity_changed)
        shapes.events.overlays.connect(self._overlays_changed)
        shapes.events.colour_by.connect(self._overlays_changed)
        shapes.roles_changed.connect(self._sync_roles)
        self._rebuild()

    # ------------------------------------------------------------------------------ model -> view
    def _rebuild(self) -> None:
        current = self.selected()
        self.list.blockSignals(True)
        self.list.clear()
        for item in self.shapes:
            row = QListWidgetItem(_swatch(item.colour), f"{item.name}  ({item.shape.n_points} vertices)")
            row.setFlags(row.flags() | Qt.ItemIsUserCheckable)
            row.setCheckState(Qt.Checked if item.visible else Qt.Unchecked)
            row.setToolTip(str(item.shape.source.path) if item.shape.source else item.name)
            self.list.addItem(row)
        self.list.blockSignals(False)
        if len(self.shapes):
            items = list(self.shapes)
            self.list.setCurrentRow(items.index(current) if current in items else len(items) - 1)
        self._row_changed(self.list.currentRow())
        self._sync_roles()

    def _visible_changed(self, item: ShapeItem) -> None:
        row = self.list.item(self.shapes.index(item))
        self.list.blockSignals(True)  # the row mirrors the model: itemChanged would write it back
        row.setCheckState(Qt.Checked if item.visible else Qt.Unchecked)
        self.list.blockSignals(False)

    def _colour_changed(self, item: ShapeItem) -> None:
        row = self.list.item(self.shapes.index(item))
        self.list.blockSignals(True)
        row.setIcon(_swatch(item.colour))
        self.list.blockSignals(False)
        self._sync_roles()  # the source / target lists show the swatch too

    def _opacity_changed(self, item: ShapeItem) -> None:
        if item is self.selected():
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(100 * item.opacity))
            self.opacity.blockSignals(False)

    def _overlays_changed(self, item: ShapeItem) -> None:
        if item is self.selected():
            self._sync_colour_by(item)

    def _sync_colour_by(self, item: ShapeItem | None) -> None:
        self.colour_by.blockSignals(True)
        self.colour_by.clear()
        self.colour_by.addItem("plain colour", None)
        if item is not None:
            for name in item.overlays:
                self.colour_by.addItem(name, name)
            self.colour_by.setCurrentIndex(max(self.colour_by.findData(item.colour_by), 0))
        self.colour_by.setEnabled(item is not None and bool(item.overlays))
        self.colour_by.blockSignals(False)

    def _sync_roles(self) -> None:
        for combo, chosen in ((self.source_combo, self.shapes.source), (self.target_combo, self.shapes.target)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("(none)")
            for item in self.shapes:
                combo.addItem(_swatch(item.colour), item.name)
            combo.setCurrentIndex(0 if chosen is None else self.shapes.index(chosen) + 1)
            combo.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        item = self.selected()
        enabled = item is not None
        for w in (self.colour_button, self.opacity, self.remove_button, self.mirror_button, self.overlay_button):
            w.setEnabled(enabled)
        if item is not None:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(100 * item.opacity))
            self.opacity.blockSignals(False)
        self._sync_colour_by(item)
        self.selection_changed.emit(item)

    # ------------------------------------------------------------------------------ view -> model
    def selected(self) -> ShapeItem | None:
        """The shape selected in the list."""
        row = self.list.currentRow()
        return self.shapes[row] if 0 <= row < len(self.shapes) else None

    def _item_ticked(self, row: QListWidgetItem) -> None:
        self.shapes[self.list.row(row)].visible = row.checkState() == Qt.Checked

    def _opacity_moved(self, value: int) -> None:
        item = self.selected()
        if item is not None:
            item.opacity = value / 100.0

    def _pick_colour(self) -> None:
        item = self.selected()
        if item is None:
            return
        colour = QColorDialog.getColor(QColor(item.colour), self, f"Colour of {item.name}")
        if colour.isValid():
            item.colour = colour.name()

    def _remove(self) -> None:
        item = self.selected()
        if item is not None:
            self.shapes.remove(item)

    def _mirror_selected(self) -> None:
        item = self.selected()
        if item is not None and self._mirror is not None:
            self._mirror(item)

    def _overlay_selected(self) -> None:
        item = self.selected()
        if item is not None and self._load_overlay is not None:
            self._load_overlay(item)

    def _colour_by_chosen(self, index: int) -> None:
        item = self.selected()
        if item is not None:
            item.colour_by = self.colour_by.itemData(index)

    def _role_chosen(self, role: str, index: int) -> None:
        item = None if index <= 0 else self.shapes[index - 1]
        setattr(self.shapes, role, item)
