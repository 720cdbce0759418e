"""shapeot.templates: population templates (free-support Wasserstein barycenters) and their statistics.

``template()`` is re-exported as ``shapeot.template``: from a folder of meshes or label maps
(:func:`load_folder`), a generalised Procrustes alignment with OT correspondences, then the
barycenter fixed point "register the template to every subject, move each vertex to the mean of
its images"; subjects run in-process or on a Dask cluster. See ``docs/templates.md``.

Nothing heavy is imported here: Dask and matplotlib are imported when used.
"""
from shapeot.core.executors import DaskExecutor, InProcessExecutor, open_executor

from .builder import template
from .config import TEMPLATE_LEVELS, TemplateConfig
from .folder import LoadedFolder, SkippedFile, TemplateInputError, load_folder
from .pca import Modes, principal_modes
from .result import Template

__all__ = ["template", "Template", "TemplateConfig", "TEMPLATE_LEVELS", "load_folder", "LoadedFolder", "SkippedFile",
           "TemplateInputError", "Modes", "principal_modes", "InProcessExecutor", "DaskExecutor", "open_executor"]
