"""shapeot.registration: the registration pipeline, ``register()`` (re-exported as ``shapeot.register``).

Pre-alignment -> non-rigid deformation -> fine-tuning, all by optimal transport (Shen, Feydy et
al., NeurIPS 2021), as stages (:mod:`.stages`) over one configuration per stage (:mod:`.config`);
see :mod:`.pipeline` and ``docs/registration.md``.
"""
from .batch import BatchResult, register_many
from .config import (
                     PRESETS,
                     ConfigError,
                     EngineOptions,
                     FinetuneConfig,
                     LDDMMOptions,
                     Level,
                     PrealignConfig,
                     RegistrationConfig,
)
from .history import HistoryEntry
from .pipeline import register
from .result import Registration
from .transfer import transfer_overlay
from .write import output_stem, write_registration

__all__ = ["register", "Registration", "RegistrationConfig", "PrealignConfig", "Level", "LDDMMOptions",
           "FinetuneConfig", "EngineOptions", "ConfigError", "HistoryEntry", "PRESETS", "output_stem",
           "write_registration", "transfer_overlay", "register_many", "BatchResult"]
