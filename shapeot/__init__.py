"""shapeot: 3D shape analysis on a fast multiscale optimal-transport engine.

The verbs live at the top level and are imported lazily, so that ``import shapeot`` does no work
and pulls in neither torch nor any file reader until one is used::

    import shapeot
    shape = shapeot.load("lh.pial.gii")          # shapeot.shapes
    res = shapeot.ot.solve(x, y, blur=1.0)       # the OT engine

Layers (arrows point up only): ``shapeot.ot`` -> ``shapeot.shapes`` -> ``shapeot.deform`` ->
``shapeot.metrics`` -> ``shapeot.registration`` -> ``shapeot.templates`` -> ``shapeot.cli`` /
``shapeot.ui`` / the Slicer plugin.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# verb -> (module, attribute); a module and a function never share a name.
_VERBS = {
    "load": ("shapeot.shapes", "load"),
    "match": ("shapeot.matching", "match"),
    "register": ("shapeot.registration", "register"),
    "Registration": ("shapeot.registration", "Registration"),
    "RegistrationConfig": ("shapeot.registration", "RegistrationConfig"),
    "Shape": ("shapeot.shapes", "Shape"),
    "Cancelled": ("shapeot.errors", "Cancelled"),
    "template": ("shapeot.templates", "template"),
    "Template": ("shapeot.templates", "Template"),
    "TemplateConfig": ("shapeot.templates", "TemplateConfig"),
    "load_folder": ("shapeot.templates", "load_folder"),
}
_SUBMODULES = ("ot", "shapes", "errors", "matching", "cli", "deform", "metrics", "registration", "templates")


def __getattr__(name: str):
    if name in _VERBS:
        module, attr = _VERBS[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"shapeot.{name}")
    raise AttributeError(f"module 'shapeot' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_VERBS) + list(_SUBMODULES))
