"""shapeot: 3D shape analysis on a fast multiscale optimal-transport engine.

The verbs live at the top level and are imported lazily, so that ``import shapeot`` does no work
and pulls in neither torch nor any file reader until one is used::

    import shapeot
    shape = shapeot.load("lh.pial.gii")          # shapeot.shapes
    res = shapeot.ot.solve(x, y, blur=1.0)       # the OT engine

Layers (each imports only the ones before it; docs/architecture.md): ``shapeot.core`` ->
``shapeot.ot`` -> ``shapeot.shapes`` -> ``shapeot.deform`` -> ``shapeot.metrics`` ->
``shapeot.matching`` -> ``shapeot.registration`` -> ``shapeot.templates`` -> ``shapeot.cli`` /
``shapeot.ui`` / the Slicer plugin.
"""
from __future__ import annotations

import importlib

# verb -> (module, attribute); a module and a function never share a name.
_VERBS = {
    "load": ("shapeot.shapes", "load"),
    "match": ("shapeot.matching", "match"),
    "register": ("shapeot.registration", "register"),
    "Registration": ("shapeot.registration", "Registration"),
    "RegistrationConfig": ("shapeot.registration", "RegistrationConfig"),
    "Shape": ("shapeot.shapes", "Shape"),
    "Cancelled": ("shapeot.core.errors", "Cancelled"),
    "template": ("shapeot.templates", "template"),
    "Template": ("shapeot.templates", "Template"),
    "TemplateConfig": ("shapeot.templates", "TemplateConfig"),
    "load_folder": ("shapeot.templates", "load_folder"),
}
_SUBMODULES = ("core", "ot", "shapes", "matching", "cli", "deform", "metrics", "registration", "templates")


def __getattr__(name: str):
    if name == "__version__":  # read from the installed metadata: pyproject.toml is the one place it is set
        from shapeot.core.version import version

        return version()
    if name in _VERBS:
        module, attr = _VERBS[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"shapeot.{name}")
    raise AttributeError(f"module 'shapeot' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_VERBS) + list(_SUBMODULES) + ["__version__"])
