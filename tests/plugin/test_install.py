"""The dependency check and installer (``ShapeOTLib.install``), with fakes for pip and the user."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MODULE_DIR, ROOT


@pytest.fixture
def install():
    from ShapeOTLib import install

    return install


def test_importing_the_installer_runs_nothing(monkeypatch):
    """No pip, no subprocess at import time (Slicer imports the module at start-up)."""
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a subprocess was started at import time")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setitem(sys.modules, "pip", None)
    sys.modules.pop("ShapeOTLib.install", None)
    importlib.import_module("ShapeOTLib.install")
    assert calls == []


def test_status_sees_what_is_installed(install):
    s = install.status()
    assert s.ready and s.missing == ()
    import torch

    import shapeot

    assert s.shapeot == shapeot.__version__ and s.torch.split("+")[0] == torch.__version__.split("+")[0]


def test_the_checkout_holding_the_module_is_found(install, tmp_path):
    assert install.find_checkout(MODULE_DIR) == ROOT
    assert install.find_checkout(tmp_path / "plugin" / "ShapeOT") is None  # no pyproject.toml there
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert install.find_checkout(tmp_path / "plugin" / "ShapeOT") is None  # not shapeot's


def test_plan_pins_what_slicer_has_and_forbids_a_second_vtk_or_qt(install):
    plan = install.make_plan(module_dir=MODULE_DIR, torch_installed=True, pytorch_extension=False,
                             installed={"numpy": "1.26.4", "torch": "2.4.1+cu121", "scipy": None})
    assert plan.requirement == str(ROOT) and plan.torch_via == "installed"
    lines = set(plan.constraints)
    assert {"numpy==1.26.4", "torch==2.4.1+cu121"} <= lines
    assert not any(line.startswith("scipy") for line in lines)  # not installed: free to install
    for name in ("vtk", "PyQt5", "PySide6", "pyvista"):
        assert f"{name}<0" in lines
    from packaging.requirements import Requirement

    for line in plan.constraints:  # every line is a valid requirement that pip accepts in a constraints file
        req = Requirement(line)
        if line.endswith("<0"):
            assert not any(req.specifier.contains(v, prereleases=True) for v in ("0", "0.0.1.dev0", "9.3.1", "5.15.10"))
    args = install.pip_arguments(plan, "/tmp/c.txt")
    assert args == ["-c", "/tmp/c.txt", str(ROOT)]
    assert not any("[" in a for a in args)  # core dependencies only: no extras


def test_plan_uses_the_pytorch_extension_when_torch_is_missing(install, monkeypatch):
    plan = install.make_plan(requirement="shapeot==0.1.0", torch_installed=False, pytorch_extension=True, installed={})
    assert plan.torch_via == "pytorch-extension" and plan.requirement == "shapeot==0.1.0"
    assert "PyTorch extension" in plan.describe()
    bare = install.make_plan(requirement="shapeot", torch_installed=False, pytorch_extension=False, installed={})
    assert bare.torch_via == "pip" and "several GB" in bare.describe()
    monkeypatch.setenv("SHAPEOT_PIP_REQUIREMENT", "shapeot @ https://example.org/shapeot.whl")
    elsewhere = install.make_plan(module_dir=Path("/nonexistent/plugin/ShapeOT"), torch_installed=True,
                                  pytorch_extension=False, installed={})
    assert elsewhere.requirement == "shapeot @ https://example.org/shapeot.whl"


def _missing(install):
    return install.Status(None, None, ("shapeot", "torch"))


def test_nothing_happens_when_the_user_declines(install):
    pip_calls, torch_calls = [], []
    plan = install.make_plan(requirement="shapeot", torch_installed=False, pytorch_extension=True, installed={})
    ok = install.ensure_shapeot(confirm=lambda text: False, pip_install=pip_calls.append,
                                install_torch=lambda: torch_calls.append(1) or True, plan=plan,
                                check=lambda: _missing(install))
    assert ok is False and pip_calls == [] and torch_calls == []


def test_accepted_install_runs_torch_then_pip_with_the_constraints(install):
    order, seen_constraints, questions = [], [], []
    state = {"installed": False}

    def fake_pip(arguments):
        order.append("pip")
        assert arguments[0] == "-c"
        seen_constraints.append(Path(arguments[1]).read_text())
        state["installed"] = True

    def check():
        return install.Status("0.1.0", "2.4.1", ()) if state["installed"] else _missing(install)

    plan = install.make_plan(requirement="shapeot", torch_installed=False, pytorch_extension=True,
                             installed={"numpy": "1.26.4"})
    ok = install.ensure_shapeot(confirm=lambda text: questions.append(text) or True, pip_install=fake_pip,
                                install_torch=lambda: order.append("torch") or True, plan=plan, check=check)
    assert ok is True and order == ["torch", "pip"] and len(questions) == 1
    assert "numpy==1.26.4" in seen_constraints[0] and "vtk<0" in seen_constraints[0]


def test_already_installed_asks_nothing(install):
    def never(*args):
        raise AssertionError("should not be called")

    assert install.ensure_shapeot(confirm=never, pip_install=never, install_torch=never) is True


def test_a_failed_install_is_an_error_not_a_silent_false(install):
    with pytest.raises(RuntimeError, match="still cannot be imported"):
        install.ensure_shapeot(confirm=lambda t: True, pip_install=lambda a: None, install_torch=lambda: True,
                               plan=install.make_plan(requirement="shapeot", torch_installed=True,
                                                      pytorch_extension=False, installed={}),
                               check=lambda: _missing(install))
