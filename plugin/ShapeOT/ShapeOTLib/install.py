"""Is shapeot installed in Slicer's Python, and if not, install it (asking first).

Slicer ships its own Python, numpy, VTK and Qt. shapeot's *core* dependencies (numpy, scipy,
torch, meshio, nibabel, pynrrd, scikit-image, libigl, tqdm) include neither VTK nor Qt;
its extras (``gui``, ``vtk``, ``dev``) do and are never requested here. The installer:

1. installs torch first through the PyTorch extension (``PyTorchUtils``: it picks the build that
   matches the GPU driver) when torch is missing and the extension is present; without it pip
   installs torch from PyPI as a dependency of shapeot (a CUDA build on Linux: large);
2. writes a pip *constraints* file that pins the packages Slicer (or the PyTorch extension)
   already installed (numpy, torch, ... at their installed versions) and forbids ``vtk``,
   ``PyQt5/6``, ``PySide2/6``, ``pyvista`` and ``pyvistaqt`` (``<0``: no version satisfies it),
   so a dependency that would pull a second VTK or Qt makes pip fail instead of breaking Slicer;
3. runs ``pip install -c constraints.txt <requirement>`` with Slicer's pip (``slicer.packaging``
   in recent Slicer, ``slicer.util.pip_install`` before), where ``<requirement>`` is the shapeot
   checkout holding this module when there is one (``plugin/ShapeOT`` inside the repository),
   else ``$SHAPEOT_PIP_REQUIREMENT``, else ``shapeot`` from PyPI.

Nothing here runs pip or a subprocess at import: :func:`ensure_shapeot` does, when called, and
only after ``confirm`` returned True. Every side effect is a parameter, so the logic is tested
with fakes outside Slicer.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FORBIDDEN",
    "PINNED_IF_PRESENT",
    "Status",
    "InstallPlan",
    "status",
    "find_checkout",
    "make_plan",
    "pip_arguments",
    "ensure_shapeot",
]

#: Distributions that must never be installed into Slicer's Python (it ships its own VTK and Qt).
FORBIDDEN = ("vtk", "PyQt5", "PyQt6", "PySide2", "PySide6", "pyvista", "pyvistaqt")
#: shapeot's core dependencies (and torch) kept at the version already installed, when installed.
PINNED_IF_PRESENT = ("numpy", "scipy", "torch", "meshio", "nibabel", "pynrrd", "scikit-image", "libigl",
                     "tqdm", "SimpleITK")
MODULE_DIR = Path(__file__).resolve().parents[1]  # plugin/ShapeOT


@dataclass(frozen=True)
class Status:
    """What is importable now.

    Attributes
    ----------
    shapeot : str or None
        Installed shapeot version (None: not importable).
    torch : str or None
        Installed torch version.
    missing : tuple of str
        Import names that failed (empty when shapeot is usable).
    """

    shapeot: str | None
    torch: str | None
    missing: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class InstallPlan:
    """What :func:`ensure_shapeot` will do.

    Attributes
    ----------
    requirement : str
        The pip requirement of shapeot (a path to a checkout, or a name/specifier).
    torch_via : {"installed", "pytorch-extension", "pip"}
        How torch is provided.
    constraints : tuple of str
        Lines of the pip constraints file.
    """

    requirement: str
    torch_via: str
    constraints: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """A paragraph for the confirmation dialog."""
        torch = {"installed": "PyTorch is already installed and is kept as it is.",
                 "pytorch-extension": "PyTorch will first be installed by the PyTorch extension.",
                 "pip": "PyTorch is not installed and the PyTorch extension is not available: pip will "
                        "install torch from PyPI (several GB on Linux). Installing the 'PyTorch' extension "
                        "from the Extensions Manager first is recommended."}[self.torch_via]
        return (f"ShapeOT needs the 'shapeot' Python package, which is not installed in Slicer's Python.\n\n"
                f"It will be installed from: {self.requirement}\n"
                f"with its core dependencies only (no second VTK or Qt). {torch}\n\nInstall now?")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def status() -> Status:
    """Whether ``shapeot`` (and ``torch``) can be imported; imports nothing heavy to find out."""
    missing = []
    for name in ("shapeot", "torch"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return Status(_version("shapeot") if "shapeot" not in missing else None,
                  _version("torch") if "torch" not in missing else None, tuple(missing))


def find_checkout(module_dir: str | os.PathLike | None = None) -> Path | None:
    """The shapeot repository holding this module (``<root>/plugin/ShapeOT``), or None.

    The root must hold a ``pyproject.toml`` whose project name is ``shapeot``.
    """
    start = Path(module_dir) if module_dir is not None else MODULE_DIR
    root = start.resolve().parents[1] if len(start.resolve().parents) > 1 else None
    if root is None:
        return None
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    text = pyproject.read_text(encoding="utf-8", errors="replace")
    if re.search(r'(?m)^\s*name\s*=\s*"shapeot"\s*$', text) is None:
        return None
    return root


def make_plan(*, requirement: str | None = None, module_dir: str | os.PathLike | None = None,
              torch_installed: bool | None = None, pytorch_extension: bool | None = None,
              installed: Mapping[str, str | None] | None = None) -> InstallPlan:
    """Decide how to install shapeot (pure: every fact about the environment can be given).

    Parameters
    ----------
    requirement : str, optional
        What to pip-install; default: the checkout holding this module, else
        ``$SHAPEOT_PIP_REQUIREMENT``, else ``"shapeot"``.
    module_dir : path, optional
        Where this module lives (to find the checkout).
    torch_installed : bool, optional
        Default: whether ``torch`` is importable.
    pytorch_extension : bool, optional
        Default: whether Slicer's PyTorch extension (``PyTorchUtils``) is importable.
    installed : mapping of distribution name to version (or None), optional
        Default: the installed versions of :data:`PINNED_IF_PRESENT`.
    """
    if requirement is None:
        checkout = find_checkout(module_dir)
        requirement = (os.fspath(checkout) if checkout is not None
                       else os.environ.get("SHAPEOT_PIP_REQUIREMENT", "shapeot"))
    if torch_installed is None:
        torch_installed = importlib.util.find_spec("torch") is not None
    if pytorch_extension is None:
        try:
            pytorch_extension = importlib.util.find_spec("PyTorchUtils") is not None
        except (ImportError, ValueError):
            pytorch_extension = False
    versions = dict(installed) if installed is not None else {d: _version(d) for d in PINNED_IF_PRESENT}
    torch_via = "installed" if torch_installed else ("pytorch-extension" if pytorch_extension else "pip")
    lines = [f"{name}=={version}" for name, version in sorted(versions.items()) if version]
    lines += [f"{name}<0" for name in FORBIDDEN]
    return InstallPlan(requirement, torch_via, tuple(lines))


def pip_arguments(plan: InstallPlan, constraints_path: str | os.PathLike) -> list[str]:
    """The arguments of ``pip install`` for ``plan`` (after ``pip install``)."""
    return ["-c", os.fspath(constraints_path), plan.requirement]


def _default_pip_install(arguments: Sequence[str]) -> None:
    """Run pip inside Slicer with Slicer's own helpers (blocking, with Slicer's progress display)."""
    import slicer

    packaging = getattr(slicer, "packaging", None)
    if packaging is None:
        try:
            packaging = importlib.import_module("slicer.packaging")
        except ImportError:
            packaging = None
    args = list(arguments)
    if packaging is not None and hasattr(packaging, "pip_install") and args[:1] == ["-c"]:
        packaging.pip_install(args[2:], constraints=args[1], requester="ShapeOT")
    else:
        slicer.util.pip_install(args)


def _default_install_torch() -> bool:
    """Install torch with the PyTorch extension (it asks the user and picks the CUDA build)."""
    import PyTorchUtils  # noqa: N813 - Slicer module name

    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True, torchVersionRequirement=">=2.4")
    return torch is not None


def ensure_shapeot(*, confirm: Callable[[str], bool], pip_install: Callable[[Sequence[str]], None] | None = None,
                   install_torch: Callable[[], bool] | None = None, plan: InstallPlan | None = None,
                   check: Callable[[], Status] = status) -> bool:
    """Make ``import shapeot`` work, installing it after asking; True when it works.

    Parameters
    ----------
    confirm : callable(message) -> bool
        Asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer); False: nothing is done.
    pip_install : callable(arguments), optional
        Runs ``pip install <arguments>``; default: Slicer's pip helpers.
    install_torch : callable() -> bool, optional
        Installs torch; default: the PyTorch extension. Used when the plan says so.
    plan : InstallPlan, optional
        Default: :func:`make_plan`.
    check : callable() -> Status
        How to test the environment (default :func:`status`).

    Raises
    ------
    RuntimeError
        If pip ran but shapeot still cannot be imported, or a forbidden package got installed.
    """
    if check().ready:
        return True
    plan = plan or make_plan()
    if not confirm(plan.describe()):
        return False
    if plan.torch_via == "pytorch-extension":
        if not (install_torch or _default_install_torch)():
            return False
    before = {name: _version(name) for name in FORBIDDEN}
    with tempfile.TemporaryDirectory(prefix="shapeot-install-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(plan.constraints) + "\n", encoding="utf-8")
        (pip_install or _default_pip_install)(pip_arguments(plan, constraints))
    importlib.invalidate_caches()
    added = [name for name in FORBIDDEN if before[name] is None and _version(name) is not None]
    if added:
        raise RuntimeError(f"installing shapeot also installed {', '.join(added)}, which Slicer already ships; "
                           "uninstall them (pip uninstall) and report this problem")
    after = check()
    if not after.ready:
        raise RuntimeError(f"pip finished but {', '.join(after.missing)} still cannot be imported; "
                           "see the Python console for pip's messages")
    return True
