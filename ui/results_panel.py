"""The result panel: one check box per result layer, the morph slider, the PCA-mode controls.

It observes a :class:`~shapeot.ui.scene.Scene` (layers appear when a result arrives) and writes
back to it; the scene keeps the values.
"""
from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .layers import template_modes
from .scene import Scene

__all__ = ["ResultsPanel"]

MORPH_STEPS = 100
MODE_RANGE_SD = 3.0  # the mode slider spans -3 .. +3 standard deviations
MODE_STEPS = 60


class ResultsPanel(QWidget):
    """Layer toggles and sliders of the current result.

    Attributes
    ----------
    checkboxes : dict of str to QCheckBox
        One per layer of the scene, keyed by layer name.
    morph : QSlider
        0 (source) .. 100 (warped source).
    mode_index : QSpinBox
        PCA mode shown (1-based in the GUI).
    mode_slider : QSlider
        -3 .. +3 standard deviations along that mode.
    """

    def __init__(self, scene: Scene, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.checkboxes: dict[str, QCheckBox] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("No result yet: Register, Match or Build template.")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.layers_box = QGroupBox("Layers")
        self._layers_layout = QVBoxLayout(self.layers_box)
        layout.addWidget(self.layers_box)

        self.morph_box = QGroupBox("Morph: source → warped")
        form = QFormLayout(self.morph_box)
        self.morph = QSlider(Qt.Horizontal)
        self.morph.setObjectName("morph")
        self.morph.setRange(0, MORPH_STEPS)
        self.morph.setValue(MORPH_STEPS)
        self.morph.setToolTip("Move the warped source (and its colour map) from the source (left) to the result "
                              "(right)")
        self.morph.valueChanged.connect(lambda v: self.scene.set_morph(v / MORPH_STEPS))
        form.addRow("t", self.morph)
        layout.addWidget(self.morph_box)

        self.mode_box = QGroupBox("Template: PCA mode")
        form = QFormLayout(self.mode_box)
        self.mode_index = QSpinBox()
        self.mode_index.setObjectName("mode_index")
        self.mode_index.setRange(1, 1)
        self.mode_slider = QSlider(Qt.Horizontal)
        self.mode_slider.setObjectName("mode_slider")
        self.mode_slider.setRange(-MODE_STEPS // 2, MODE_STEPS // 2)
        self.mode_slider.setToolTip(f"-{MODE_RANGE_SD:g} .. +{MODE_RANGE_SD:g} standard deviations")
        self.mode_label = QLabel("")
        self.mode_index.valueChanged.connect(self._mode_moved)
        self.mode_slider.valueChanged.connect(self._mode_moved)
        form.addRow("mode", self.mode_index)
        form.addRow("amplitude", self.mode_slider)
        form.addRow(self.mode_label)
        layout.addWidget(self.mode_box)
        layout.addStretch(1)

        scene.layers_changed.connect(self._rebuild)
        scene.layer_visibility.connect(self._visibility_changed)
        scene.morph_changed.connect(self._morph_changed)
        scene.mode_changed.connect(self._mode_changed)
        self._rebuild()

    @staticmethod
    def coefficient(slider_value: int) -> float:
        """Standard deviations for a position of the mode slider."""
        return slider_value * MODE_RANGE_SD / (MODE_STEPS // 2)

    def _rebuild(self) -> None:
        for box in self.checkboxes.values():
            self._layers_layout.removeWidget(box)
            box.deleteLater()
        self.checkboxes = {}
        for name, layer in self.scene.layers.items():
            box = QCheckBox(layer.title)
            box.setObjectName(f"layer_{name}")
            box.setChecked(layer.visible)
            box.toggled.connect(lambda on, n=name: self.scene.set_layer_visible(n, on))
            self._layers_layout.addWidget(box)
            self.checkboxes[name] = box
        kind = self.scene.kind
        self.layers_box.setVisible(bool(self.checkboxes))
        self.morph_box.setVisible(kind == "registration")
        self.mode_box.setVisible(kind == "template")
        if kind == "template":
            _, modes, _ = template_modes(self.scene.result.template)
            self.mode_index.blockSignals(True)
            self.mode_index.setRange(1, max(1, len(modes)))
            self.mode_index.setValue(1)
            self.mode_index.blockSignals(False)
            self._explained = [float(r) for r in self.scene.result.template.modes.explained_variance_ratio]
            self._mode_changed(*self.scene.mode)
        self.summary.setText(self._summary_text())

    def _summary_text(self) -> str:
        r, kind = self.scene.result, self.scene.kind
        if kind == "registration":
            return (f"Registration ({r.config.preset}): {r.source.name} → {r.target.name}, "
                    f"{r.timings.get('total', 0.0):.1f} s.")
        if kind == "match":
            return f"OT match: {r.source.name} → {r.target.name}, {r.seconds:.1f} s."
        if kind == "template":
            return f"Template of {len(r.subjects)} subjects from {r.folder}."
        return "No result yet: Register, Match or Build template."

    def _visibility_changed(self, name: str, visible: bool) -> None:
        box = self.checkboxes.get(name)
        if box is not None and box.isChecked() != visible:
            box.blockSignals(True)
            box.setChecked(visible)
            box.blockSignals(False)

    def _morph_changed(self, t: float) -> None:
        v = round(t * MORPH_STEPS)
        if self.morph.value() != v:
            self.morph.blockSignals(True)
            self.morph.setValue(v)
            self.morph.blockSignals(False)

    def _mode_moved(self, *_args) -> None:
        self.scene.set_mode(self.mode_index.value() - 1, self.coefficient(self.mode_slider.value()))

    def _mode_changed(self, index: int, coefficient: float) -> None:
        slider = round(coefficient * (MODE_STEPS // 2) / MODE_RANGE_SD)
        for w, v in ((self.mode_index, index + 1), (self.mode_slider, slider)):
            if w.value() != v:
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)
        explained = getattr(self, "_explained", [])
        share = f", {100 * explained[index]:.0f} % of the variance" if index < len(explained) else ""
        self.mode_label.setText(f"mode {index + 1}{share}: {coefficient:+.1f} SD")
