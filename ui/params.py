"""The parameter panel: registration presets with an advanced form, match and template options.

Forms are generated from the library's own configuration dataclasses (``RegistrationConfig``,
``TemplateConfig``): one widget per plain field (numbers, flags, choices), tooltips taken from
the class's numpydoc "Attributes" section, and validation left to the dataclass itself (its
``ValueError`` names the field and is shown to the user). Nothing here duplicates a default.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

__all__ = ["MatchOptions", "DataclassForm", "ParamsPanel", "field_docs"]

#: Choices of string fields, by name or dotted path (None is shown as "none").
CHOICES: dict[str, tuple] = {
    "prealign.model": ("rigid", "similarity", "affine"),
    "model": ("spline", "lddmm", None),
    "procrustes": ("rigid", "similarity", None),
    "backend": ("auto", "torch", "keops", "triton"),
    "device": ("auto", "cpu", "cuda"),
}


@dataclasses.dataclass(frozen=True)
class MatchOptions:
    """Options of :func:`shapeot.match` shown in the Match tab.

    Attributes
    ----------
    blur : float or None
        Blur in mm: correspondences are averaged over about this length (none: 1 % of the
        joint diameter).
    reach : float or None
        Reach in mm for unbalanced OT: mass farther than about this is not matched (none:
        balanced).
    scaling : float
        Epsilon-scaling ratio in (0, 1): 0.5 fast, 0.9 accurate.
    backend : str
        OT backend: auto, torch or keops.
    """

    blur: float | None = None
    reach: float | None = None
    scaling: float = 0.8
    backend: str = "auto"

    def __post_init__(self) -> None:
        for name in ("blur", "reach"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0 mm or none; got {v}")
        if not 0 < self.scaling < 1:
            raise ValueError(f"scaling must be in (0, 1); got {self.scaling}")


def field_docs(cls: type) -> dict[str, str]:
    """{field name: description} from the numpydoc "Attributes" section of ``cls``'s docstring.

    A line "a, b : type" documents several fields at once.
    """
    import inspect

    doc = inspect.cleandoc(cls.__doc__ or "")
    match = re.search(r"^Attributes\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    if not match:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    for line in match.group(1).splitlines():
        if line and not line[0].isspace():  # "name : type" (or "a, b : type") at the section's indent
            names = [n.strip() for n in line.split(":", 1)[0].split(",") if n.strip()]
            for n in names:
                out[n] = ""
        elif names and line.strip():
            for n in names:
                out[n] = (out[n] + " " + line.strip()).strip()
    return out


def _kind(annotation: Any) -> str | None:
    """'bool', 'int', 'float', 'str', 'float?', 'int?', 'str?', 'floats' or None (not editable)."""
    a = str(annotation).replace("typing.", "").replace(" ", "")
    table = {"bool": "bool", "int": "int", "float": "float", "str": "str", "float|None": "float?",
             "int|None": "int?", "str|None": "str?", "Optional[float]": "float?", "Optional[int]": "int?",
             "Optional[str]": "str?", "tuple[float,...]": "floats"}
    return table.get(a)


def _nested(cls: type, name: str) -> tuple[type | None, bool]:
    """(the dataclass type of field ``name`` of ``cls``, whether it may be None), or (None, False)."""
    import types
    import typing

    tp = typing.get_type_hints(cls)[name]
    args = typing.get_args(tp)
    optional = (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union) and type(None) in args
    inner = next((a for a in args if a is not type(None)), tp) if optional else tp
    return (inner, optional) if dataclasses.is_dataclass(inner) else (None, False)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ", ".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class DataclassForm(QWidget):
    """A form editing the plain fields of a dataclass (numbers, flags, choices), and its nested
    dataclasses as groups (a checkable group for an optional one: unticked is None).

    Fields are named by their dotted path ("prealign.starts", "engine.backend").

    Parameters
    ----------
    cls : dataclass type
    skip : iterable of str
        Fields not shown (dotted paths).
    choices : dict, optional
        Allowed values of string fields (shown as a combo box), by field name or dotted path;
        default :data:`CHOICES`.

    Signals
    -------
    edited()
        A value was changed by the user.
    """

    edited = pyqtSignal()

    def __init__(self, cls: type, *, skip=(), choices: dict[str, tuple] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cls = cls
        self._choices = CHOICES if choices is None else choices
        self._skip = set(skip)
        self._widgets: dict[str, tuple[str, QWidget]] = {}
        self._groups: dict[str, QGroupBox] = {}
        self._build(cls, QFormLayout(self), "")
        self.set_values(cls())

    def _build(self, cls: type, layout: QFormLayout, prefix: str) -> None:
        layout.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            path = prefix + f.name
            if path in self._skip:
                continue
            inner, optional = _nested(cls, f.name)
            if inner is not None:
                box = QGroupBox(f.name.replace("_", " "))
                box.setObjectName(path)
                box.setToolTip(docs.get(f.name, ""))
                box.setCheckable(optional)
                if optional:
                    box.toggled.connect(self.edited)
                self._build(inner, QFormLayout(box), path + ".")
                layout.addRow(box)
                self._groups[path] = box
                continue
            kind = _kind(f.type)
            if kind is None:
                continue
            widget = self._make(f.name, path, kind)
            widget.setObjectName(path)
            widget.setToolTip(docs.get(f.name, ""))
            label = QLabel(f.name.replace("_", " "))
            label.setToolTip(docs.get(f.name, ""))
            layout.addRow(label, widget)
            self._widgets[path] = (kind, widget)

    def _make(self, name: str, path: str, kind: str) -> QWidget:
        choices = self._choices.get(path, self._choices.get(name))
        if kind == "bool":
            w = QCheckBox()
            w.toggled.connect(self.edited)
        elif kind == "int":
            w = QSpinBox()
            w.setRange(0, 10_000_000)
            w.valueChanged.connect(self.edited)
        elif kind in ("str", "str?") and choices is not None:
            w = QComboBox()
            for c in choices:
                w.addItem("none" if c is None else str(c), c)
            w.currentIndexChanged.connect(self.edited)
        else:
            w = QLineEdit()
            if kind.endswith("?"):
                w.setPlaceholderText("none")
            w.textEdited.connect(self.edited)
        return w

    @property
    def names(self) -> list[str]:
        """The fields shown (dotted paths)."""
        return list(self._widgets)

    def widget(self, name: str) -> QWidget:
        """The editor of field ``name`` (a dotted path), or the group of a nested one."""
        return self._widgets[name][1] if name in self._widgets else self._groups[name]

    def set_values(self, values: Any, prefix: str = "") -> None:
        """Show the values of a dataclass instance or a (nested) dict (unknown keys are ignored;
        None for an optional group unticks it)."""
        if dataclasses.is_dataclass(values):
            values = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)}
        for name, value in values.items():
            path = prefix + name
            if path in self._groups:
                box = self._groups[path]
                if box.isCheckable():
                    box.blockSignals(True)
                    box.setChecked(value is not None)
                    box.blockSignals(False)
                if value is not None and (dataclasses.is_dataclass(value) or isinstance(value, dict)):
                    self.set_values(value, path + ".")
            elif path in self._widgets:
                self._show(self._widgets[path][1], value)

    @staticmethod
    def _show(w: QWidget, value: Any) -> None:
        w.blockSignals(True)
        try:
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QSpinBox):
                w.setValue(int(value))
            elif isinstance(w, QComboBox):
                i = w.findData(value)
                w.setCurrentIndex(i if i >= 0 else 0)
            else:
                w.setText(_text(value))
        finally:
            w.blockSignals(False)

    def values(self) -> dict[str, Any]:
        """The values shown, parsed to the fields' types, nested by group (an unticked optional
        group is None).

        Raises
        ------
        ValueError
            Naming the field whose text is not a number.
        """
        out: dict[str, Any] = {}
        for path, (kind, w) in self._widgets.items():
            parts = path.split(".")
            if any(self._unticked(".".join(parts[:i])) for i in range(1, len(parts))):
                continue
            node = out
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = self._parse(path, kind, w)
        for path, box in self._groups.items():
            if box.isCheckable() and not box.isChecked():
                parts, node = path.split("."), out
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = None
        return out

    def _unticked(self, path: str) -> bool:
        box = self._groups.get(path)
        return box is not None and box.isCheckable() and not box.isChecked()

    @staticmethod
    def _parse(path: str, kind: str, w: QWidget) -> Any:
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentData()
        text = w.text().strip()
        try:
            if kind.endswith("?") and text.lower() in ("", "none"):
                return None
            if kind == "floats":
                return tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
            if kind.startswith("float"):
                return float(text)
            if kind.startswith("int"):
                return int(text)
            return text
        except ValueError:
            raise ValueError(f"{path}: {text!r} is not a valid number") from None


def _registration_config_cls():
    from shapeot.registration import RegistrationConfig

    return RegistrationConfig


def _template_config_cls():
    """``shapeot.TemplateConfig``, or None while shapeot.templates is not installed."""
    try:
        from shapeot.templates import TemplateConfig
    except ImportError:
        return None
    return TemplateConfig


class ParamsPanel(QTabWidget):
    """Tabs "Register", "Match", "Template", each with its parameters and its action button.

    The buttons only emit signals; the main window runs the actions.

    Signals
    -------
    register_requested(), match_requested(), template_requested()
    """

    register_requested = pyqtSignal()
    match_requested = pyqtSignal()
    template_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addTab(self._register_tab(), "Register")
        self.preset.setCurrentText("nonrigid")  # the library's default
        self.preset.currentTextChanged.connect(self._preset_changed)
        self._preset_changed(self.preset.currentText())
        self.addTab(self._match_tab(), "Match")
        self.addTab(self._template_tab(), "Template")

    def _button(self, text: str, name: str, tip: str, signal) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(signal)
        return button

    def _register_tab(self) -> QWidget:
        from shapeot.registration import PRESETS

        reg = QWidget()
        lay = QVBoxLayout(reg)
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset"))
        self.preset = QComboBox()
        self.preset.setObjectName("preset")
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip(_registration_config_cls().from_preset.__doc__.split("\n\n", 1)[-1].strip())
        row.addWidget(self.preset, 1)
        lay.addLayout(row)
        self.advanced = QGroupBox("Advanced parameters")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        self.advanced.setToolTip("Override the preset's values (lengths are fractions of the source's RMS radius)")
        adv = QVBoxLayout(self.advanced)
        self.register_form = DataclassForm(_registration_config_cls(), skip=("preset",))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.register_form)
        adv.addWidget(scroll)
        self._advanced_scroll = scroll
        self._register_layout = lay
        lay.addWidget(self.advanced)
        lay.addStretch(1)
        self.advanced.toggled.connect(self._advanced_toggled)
        self._advanced_toggled(False)
        self.register_button = self._button("Register", "register_button",
                                            "Register the source onto the target (shapeot.register)",
                                            self.register_requested)
        lay.addWidget(self.register_button)
        return reg

    def _match_tab(self) -> QWidget:
        mat = QWidget()
        lay = QVBoxLayout(mat)
        self.match_form = DataclassForm(MatchOptions)
        lay.addWidget(self.match_form)
        lay.addStretch(1)
        self.match_button = self._button("Match", "match_button",
                                         "OT correspondences from the source to the target (shapeot.match)",
                                         self.match_requested)
        lay.addWidget(self.match_button)
        return mat

    def _template_tab(self) -> QWidget:
        tpl = QWidget()
        lay = QVBoxLayout(tpl)
        form = QFormLayout()
        folder_row = QHBoxLayout()
        self.template_folder = QLineEdit()
        self.template_folder.setPlaceholderText("folder of meshes or label maps")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_folder)
        folder_row.addWidget(self.template_folder, 1)
        folder_row.addWidget(browse)
        form.addRow("folder", folder_row)
        self.template_pattern = QLineEdit()
        self.template_pattern.setPlaceholderText("all readable files (e.g. *.gii)")
        form.addRow("pattern", self.template_pattern)
        self.template_label = QLineEdit()
        self.template_label.setPlaceholderText("label maps: label value or name")
        form.addRow("label", self.template_label)
        lay.addLayout(form)
        cls = _template_config_cls()
        self.template_form = DataclassForm(cls, skip=("registration",)) if cls is not None else None
        if self.template_form is not None:
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(self.template_form)
            lay.addWidget(scroll, 1)
        else:
            lay.addWidget(QLabel("shapeot.templates is not available in this installation"), 1)
        self.template_button = self._button("Build template", "template_button",
                                            "Build a population template from the folder (shapeot.template)",
                                            self.template_requested)
        self.template_button.setEnabled(self.template_form is not None)
        lay.addWidget(self.template_button)
        return tpl

    # ---------------------------------------------------------------------------------- values
    def _advanced_toggled(self, on: bool) -> None:
        self._advanced_scroll.setVisible(on)
        lay = self._register_layout
        lay.setStretch(lay.indexOf(self.advanced), 1 if on else 0)
        lay.setStretch(lay.indexOf(self.advanced) + 1, 0 if on else 1)

    def _preset_changed(self, name: str) -> None:
        self.register_form.set_values(_registration_config_cls().from_preset(name))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of shapes", self.template_folder.text())
        if folder:
            self.template_folder.setText(folder)

    def registration_config(self):
        """The :class:`shapeot.RegistrationConfig` of the preset, with the advanced values when
        the advanced box is ticked (validated by the dataclass: ValueError names the field)."""
        cls = _registration_config_cls()
        if not self.advanced.isChecked():
            return cls.from_preset(self.preset.currentText())
        return cls.from_preset(self.preset.currentText(), **self.register_form.values())

    def match_options(self) -> MatchOptions:
        """The Match tab's options (validated)."""
        return MatchOptions(**self.match_form.values())

    def template_config(self):
        """The :class:`shapeot.TemplateConfig` of the Template tab."""
        cls = _template_config_cls()
        if cls is None or self.template_form is None:
            raise ImportError("shapeot.templates is not available in this installation")
        return cls(**self.template_form.values())

    def template_label_value(self) -> int | str | None:
        """The label to extract from label maps of the template folder (None: the only label)."""
        text = self.template_label.text().strip()
        if not text:
            return None
        return int(text) if text.lstrip("-").isdigit() else text

    # ---------------------------------------------------------------------------------- settings
    def state(self) -> dict[str, Any]:
        """Plain-data state for the settings (values that do not parse are left out)."""
        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return list(v) if isinstance(v, tuple) else v

        def safe(form):
            try:
                return plain(form.values())
            except ValueError:
                return {}

        state = {"tab": self.currentIndex(), "preset": self.preset.currentText(),
                 "advanced": self.advanced.isChecked(), "register": safe(self.register_form),
                 "match": safe(self.match_form), "template_folder": self.template_folder.text(),
                 "template_pattern": self.template_pattern.text(), "template_label": self.template_label.text()}
        if self.template_form is not None:
            state["template"] = safe(self.template_form)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Show a state saved by :meth:`state` (tolerant of missing or stale keys)."""
        if not state:
            return
        if state.get("preset") in [self.preset.itemText(i) for i in range(self.preset.count())]:
            self.preset.setCurrentText(state["preset"])
        self.advanced.setChecked(bool(state.get("advanced", False)))
        if isinstance(state.get("register"), dict):
            self.register_form.set_values(state["register"])
        if isinstance(state.get("match"), dict):
            self.match_form.set_values(state["match"])
        if self.template_form is not None and isinstance(state.get("template"), dict):
            self.template_form.set_values(state["template"])
        self.template_folder.setText(str(state.get("template_folder", "")))
        self.template_pattern.setText(str(state.get("template_pattern", "")))
        self.template_label.setText(str(state.get("template_label", "")))
        if isinstance(state.get("tab"), int) and 0 <= state["tab"] < self.count():
            self.setCurrentIndex(state["tab"])
