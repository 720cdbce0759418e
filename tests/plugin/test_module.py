"""ShapeOT.py's Module, Logic and its own ScriptedLoadableModuleTest, outside the Slicer application.

``ShapeOT.py`` imports modules that exist only inside Slicer (``qt``, ``ctk``,
``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``). Here they are replaced by
minimal stand-ins (no Qt), while everything the Logic and the Test touch is real: the MRML
scene and nodes of ``slicer-core``, ``slicer.util``, shapeot. The Widget is not exercised (it
needs Slicer's Qt widgets); it is checked statically in test_static.py.
"""
from __future__ import annotations

import importlib
import sys
import types
import typing
import unittest

import pytest

from .conftest import MODULE_DIR


class _Parent:
    """What Slicer passes to a ScriptedLoadableModule: an object holding the module's metadata."""

    def __init__(self):
        self.title = self.helpText = self.acknowledgementText = ""
        self.categories, self.dependencies, self.contributors = [], [], []


@pytest.fixture
def module(monkeypatch, scene, slicer_core):
    """ShapeOT.py imported with stand-ins for Slicer's application-only modules."""
    base = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleTest(unittest.TestCase):
        messages: list = []

        def delayDisplay(self, message, msec=1000):  # noqa: N802 - Slicer's name
            self.messages.append(message)

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(base, cls.__name__, cls)
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")

    def parameterNodeWrapper(cls):  # noqa: N802 - Slicer's name
        # Slicer's decorator starts with typing.get_type_hints: every annotation must resolve
        hints = typing.get_type_hints(cls, include_extras=True)
        assert {"sourceNode", "preset", "templateFolder"} <= set(hints)
        return cls

    wrapper.parameterNodeWrapper = parameterNodeWrapper
    wrapper.Choice = lambda choices: ("Choice", tuple(choices))
    wrapper.WithinRange = lambda lo, hi: ("WithinRange", lo, hi)
    for name, mod in (("qt", types.ModuleType("qt")), ("ctk", types.ModuleType("ctk")),
                      ("slicer.ScriptedLoadableModule", base), ("slicer.parameterNodeWrapper", wrapper)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(slicer_core, "mrmlScene", scene, raising=False)
    monkeypatch.syspath_prepend(str(MODULE_DIR))
    monkeypatch.delitem(sys.modules, "ShapeOT", raising=False)
    mod = importlib.import_module("ShapeOT")
    yield mod
    sys.modules.pop("ShapeOT", None)


def test_module_metadata(module):
    parent = _Parent()
    module.ShapeOT(parent)
    assert parent.title == "ShapeOT" and parent.categories == ["Shape Analysis"]
    assert "optimal transport" in parent.helpText


def test_logic_needs_the_scene_and_registers_nodes(module, scene, small_brain, subject_brain):
    from ShapeOTLib import nodes

    with pytest.raises(ValueError, match="MRML scene"):
        module.ShapeOTLogic()
    logic = module.ShapeOTLogic(scene)
    source = nodes.model_from_shape(scene, small_brain.decimate(300), name="source")
    target = nodes.model_from_shape(scene, subject_brain.decimate(300), name="target")
    result = logic.register(source, target, preset="rigid", n_correspondences=5,
                            config_overrides={"prealign": {"starts": 1}, "compute_metrics": False})
    assert result.transform_node.IsA("vtkMRMLLinearTransformNode") and result.warped_model.GetScene() is scene
    matched = logic.match(source, target, n_correspondences=5)
    assert matched.model.GetPolyData().GetPointData().GetArray("ot_target") is not None


def test_the_modules_own_test_passes_on_the_sample_brains(module):
    """ShapeOTTest, as Slicer runs it, with smaller brains and one pre-alignment start."""

    class QuickTest(module.ShapeOTTest):
        n_points = 600
        config_overrides = {"prealign": {"starts": 1}}

    test = QuickTest("test_RegisterSampleBrains")
    outcome = unittest.TestResult()
    test.run(outcome)
    assert outcome.wasSuccessful(), outcome.failures + outcome.errors
    assert not outcome.skipped
    assert any(m.startswith("Test passed") for m in QuickTest.messages)
