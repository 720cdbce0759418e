"""Static checks of the extension: the module file, its .ui, CMake lists, catalog entry and icon.

None of these needs Slicer: ``ShapeOT.py`` imports Qt wrappers (``qt``, ``ctk``) that exist only
inside the application, so it is checked as source (``ast``), and the ``.ui`` file as XML (and
by PyQt's own .ui compiler when PyQt5 is installed).
"""
from __future__ import annotations

import ast
import io
import json
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest

from .conftest import MODULE_DIR, PLUGIN

MODULE = MODULE_DIR / "ShapeOT.py"
UI = MODULE_DIR / "Resources" / "UI" / "ShapeOT.ui"
ICON = MODULE_DIR / "Resources" / "Icons" / "ShapeOT.png"


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


@pytest.fixture(scope="module")
def ui_widgets() -> dict[str, ET.Element]:
    root = ET.parse(UI).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _base_names(cls: ast.ClassDef) -> set[str]:
    return {b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in cls.bases}


def test_module_defines_the_four_classes_of_a_scripted_module(tree):
    classes = _classes(tree)
    expected = {
        "ShapeOT": "ScriptedLoadableModule",
        "ShapeOTWidget": "ScriptedLoadableModuleWidget",
        "ShapeOTLogic": "ScriptedLoadableModuleLogic",
        "ShapeOTTest": "ScriptedLoadableModuleTest",
    }
    for name, base in expected.items():
        assert name in classes, f"ShapeOT.py does not define {name}"
        assert base in _base_names(classes[name]), f"{name} does not derive from {base}"
    test_methods = {f.name for f in classes["ShapeOTTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"setUp", "runTest", "test_RegisterSampleBrains"} <= test_methods


def test_parameter_node_is_a_parameter_node_wrapper(tree):
    classes = _classes(tree)
    wrapped = [c for c in classes.values() if any(ast.unparse(d) == "parameterNodeWrapper" for d in c.decorator_list)]
    assert [c.name for c in wrapped] == ["ShapeOTParameterNode"]


def test_every_ui_widget_used_by_the_module_exists_in_the_ui_file(tree, ui_widgets):
    used = set()
    for node in ast.walk(tree):
        # self.ui.<name>
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            used.add(node.attr)
        # getattr(self.ui, f"{which}SegmentComboBox"): every expansion of the f-string
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and ast.unparse(node.args[0]) == "self.ui" and isinstance(node.args[1], ast.JoinedStr)):
            suffix = "".join(v.value for v in node.args[1].values if isinstance(v, ast.Constant))
            used.update(f"{which}{suffix}" for which in ("source", "target"))
    assert len(used) >= 8  # the walk found the widgets
    missing = sorted(used - set(ui_widgets))
    assert not missing, f"ShapeOT.py uses widgets that ShapeOT.ui does not define: {missing}"


def test_ui_parameter_names_are_fields_of_the_parameter_node(tree, ui_widgets):
    node_class = _classes(tree)["ShapeOTParameterNode"]
    fields = {s.target.id for s in node_class.body if isinstance(s, ast.AnnAssign)}
    bound = {}
    for name, widget in ui_widgets.items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[name] = prop.find("string").text
    assert len(bound) >= 10
    unknown = {w: p for w, p in bound.items() if p not in fields}
    assert not unknown, f"widgets bound to parameters the parameter node lacks: {unknown}"
    assert len(set(bound.values())) == len(bound), "two widgets bound to one parameter"


def test_ui_file_is_valid_qt_designer_xml(ui_widgets):
    root = ET.parse(UI).getroot()
    assert root.tag == "ui" and root.find("class").text == "ShapeOT"
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "ShapeOT"
    declared = {c.find("class").text for c in root.iter("customwidget")}
    qt_classes = {"QLabel", "QComboBox", "QSpinBox", "QDoubleSpinBox", "QPushButton", "QLineEdit", "QCheckBox"}
    for name, widget in ui_widgets.items():
        cls = widget.get("class")
        assert cls in qt_classes or cls in declared, f"{name}: class {cls} is neither Qt's nor a declared custom widget"
    # every node combo box gets the scene from the top-level qMRMLWidget
    combos = {n for n, w in ui_widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    receivers = {c.find("receiver").text for c in root.iter("connection")
                 if c.find("signal").text == "mrmlSceneChanged(vtkMRMLScene*)"}
    assert combos and combos <= receivers


def test_ui_file_compiles_with_qt_uic():
    uic = pytest.importorskip("PyQt5.uic", reason="PyQt5 is not installed")
    out = io.StringIO()
    uic.compileUi(str(UI), out)
    code = out.getvalue()
    assert "self.registerButton" in code and "from qMRMLNodeComboBox import qMRMLNodeComboBox" in code


def test_module_loads_without_shapeot_and_avoids_star_imports(tree):
    """Slicer must load the module before shapeot is installed: no top-level shapeot import."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            assert all(a.name != "*" for a in node.names), f"star import from {node.module}"
        else:
            continue
        assert not any(n == "shapeot" or n.startswith("shapeot.") for n in names), f"top-level import of {names}"
    # the Logic takes the scene; only the widget and the Slicer-only test touch slicer.mrmlScene
    logic = _classes(tree)["ShapeOTLogic"]
    uses = [n for n in ast.walk(logic) if isinstance(n, ast.Attribute) and ast.unparse(n) == "slicer.mrmlScene"]
    assert not uses, "ShapeOTLogic reaches for the global slicer.mrmlScene"


def test_bridge_imports_without_shapeot_vtk_or_slicer():
    """ShapeOTLib imports nothing heavy at import time (so the installer works before shapeot exists)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "for name in ('shapeot', 'torch', 'vtk', 'slicer', 'qt'):\n"
        "    sys.modules[name] = None  # any import of these now raises ImportError\n"
        "import importlib\n"
        "for m in ('nodes', 'segmentations', 'transforms', 'markups', 'display', 'runs', 'install'):\n"
        "    importlib.import_module('ShapeOTLib.' + m)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(MODULE_DIR)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _cmake_list(text: str, variable: str) -> list[str]:
    m = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert m, f"{variable} is not set"
    return [t.replace("${MODULE_NAME}", "ShapeOT") for t in m.group(1).split()]


def test_module_cmakelists_lists_every_script_and_resource():
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert "slicerMacroBuildScriptedModule" in text and "set(MODULE_NAME ShapeOT)" in text
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    for entry in scripts + resources:
        assert (MODULE_DIR / entry).is_file(), f"CMakeLists.txt lists {entry}, which does not exist"
    on_disk = {f"ShapeOTLib/{p.name}" for p in (MODULE_DIR / "ShapeOTLib").glob("*.py")} | {"ShapeOT.py"}
    assert on_disk == set(scripts), f"scripts not packaged: {sorted(on_disk - set(scripts))}"
    assert {"Resources/Icons/ShapeOT.png", "Resources/UI/ShapeOT.ui"} <= set(resources)
    assert (MODULE_DIR / "Testing" / "CMakeLists.txt").is_file()


def test_extension_cmakelists_has_the_extension_metadata():
    text = (PLUGIN / "CMakeLists.txt").read_text()
    for var in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({var}\s", text), f"{var} missing"
    assert "add_subdirectory(ShapeOT)" in text
    assert "find_package(Slicer REQUIRED)" in text and "Slicer_EXTENSION_CPACK" in text


def test_extension_catalog_entry_follows_the_schema():
    """Slicer's catalog schema v1.0.1: required $schema, category, scm_url; no other keys."""
    entry = json.loads((PLUGIN / "ShapeOT.json").read_text())
    allowed = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "enabled", "tier"}
    assert {"$schema", "category", "scm_url"} <= set(entry) <= allowed
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert isinstance(entry["build_dependencies"], list) and entry.get("tier", 5) in (1, 3, 5)
    cmake = (PLUGIN / "CMakeLists.txt").read_text()
    assert f'set(EXTENSION_CATEGORY "{entry["category"]}")' in cmake


def _png(path) -> tuple[int, int, np.ndarray]:
    """Width, height and RGBA pixels of an 8-bit RGBA, non-interlaced PNG (decoded with zlib only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunks.setdefault(kind, b"")
        chunks[kind] += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (8, 6, 0)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + 4 * width)
    rows, prev = [], np.zeros(4 * width, dtype=np.int64)
    for line in raw:
        f, x = line[0], line[1:].astype(np.int64)
        out = np.zeros_like(x)
        for i in range(len(x)):  # PNG filters (spec section 9)
            a = out[i - 4] if i >= 4 else 0
            b = prev[i]
            c = prev[i - 4] if i >= 4 else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[i] = (x[i] + pred) % 256
        rows.append(out)
        prev = out
    return width, height, np.array(rows).reshape(height, width, 4)


def test_icon_is_a_real_128px_rgba_png():
    width, height, rgba = _png(ICON)
    assert (width, height) == (128, 128)
    alpha = rgba[..., 3]
    assert 0.05 < np.mean(alpha > 0) < 0.9  # a drawing on a transparent background
    opaque = rgba[alpha > 200][:, :3].astype(float)
    assert opaque.std(axis=0).max() > 30  # several colours, not a flat square
