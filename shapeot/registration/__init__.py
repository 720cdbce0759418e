"""shapeot.registration: the registration pipeline, ``register()`` (re-exported as ``shapeot.register``).

Pre-alignment -> non-rigid deformation -> fine-tuning, all by optimal transport (Shen, Feydy et
al., NeurIPS 2021); see :mod:`.pipeline` and ``docs/registration.md``.
"""
from .config import PRESETS, Level, RegistrationConfig
from .pipeline import register
from .result import Registration
from .write import output_stem, write_registration
from .transfer import transfer_overlay
from .batch import BatchResult, register_many

__all__ = ["register", "Registration", "RegistrationConfig", "Level", "PRESETS", "output_stem", "write_registration",
           "transfer_overlay", "register_many", "BatchResult"]
