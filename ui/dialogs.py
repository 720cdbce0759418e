"""Small dialogs: the error box (non-blocking) and the label chooser of segmented scans."""
from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QInputDialog, QMessageBox, QWidget

__all__ = ["show_error", "choose_label"]


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Show an error without blocking: the event loop (and the app) keeps running.

    The box is window-modal and deletes itself when closed; its full traceback, if any, is under
    "Show Details...". Returns the box (tests find and close it).
    """
    box = QMessageBox(QMessageBox.Critical, title, message, QMessageBox.Ok, parent)
    box.setObjectName("error_dialog")
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModal)
    box.show()
    return box


def choose_label(parent: QWidget | None, path: str, labels: list) -> object | None:
    """Ask which label of a scan to extract (blocking); returns the chosen label value or None.

    Parameters
    ----------
    labels : list of shapeot.shapes.Label
        As listed by :func:`shapeot.shapes.list_labels`.
    """
    if len(labels) == 1:
        return labels[0].value
    texts = [f"{lab}  –  {lab.volume_mm3:.0f} mm³" for lab in labels]
    text, ok = QInputDialog.getItem(parent, "Choose a label",
                                    f"{path}\nholds {len(labels)} labels. Extract the surface of:", texts, 0, False)
    if not ok:
        return None
    return labels[texts.index(text)].value
