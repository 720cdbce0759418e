"""The ``shapeot`` command line. It holds no science: it calls the same public functions as the API.

    shapeot match SOURCE TARGET -o corr.csv
    shapeot register SOURCE TARGET -o warped.vtp [--preset P | --config C.toml] [--print-config]
                     [--save-transform T.npz] [--itk-transform F.h5 --itk-inverse I.h5] [--ants PREFIX]
                     [--overlay FILE ...] [--hemi lh|rh|both] [--frame target|source]
    shapeot apply T.npz INPUT -o OUTPUT [--frame target|source]
    shapeot transfer T.npz OVERLAY ... -o FOLDER
    shapeot export-itk T.npz --itk-transform F.h5 [--itk-inverse I.h5] [--ants PREFIX]
    shapeot register-many SOURCES TARGET -o FOLDER [--json] [--itk] [--overlay NAME ...]
    shapeot template FOLDER -o OUTDIR [--config C.toml] [--overlay NAME ...]
    shapeot demo [-o OUTDIR]           the README's main job on the two sample brains
    shapeot backends [--device D]      which OT backends work on this machine, and why not

Global options (``--quiet``, ``--threads N``) go before or after the sub-command. Inputs are
meshes, label maps (``--label``), FreeSurfer subject folders or subject IDs under
``$SUBJECTS_DIR`` (``--subjects-dir``). Errors print one line starting with "shapeot: error:" and
exit with status 2 (130 when cancelled); warnings print one line starting with "shapeot: warning:".
Every output path is checked before the work starts; outputs are staged and committed together,
each created exclusively unless --overwrite (:mod:`shapeot.core.outputs`): nothing partial is left
behind and no existing file is replaced without --overwrite.

Modules: :mod:`.parser` (arguments), :mod:`.options` (the option groups commands share),
:mod:`.common` (errors, progress, inputs, configurations), one module per family of commands
(:mod:`.matching`, :mod:`.register`, :mod:`.files`, :mod:`.template`), :mod:`.main` (entry point).
"""
from shapeot.shapes.landmarks import read_landmarks

from .main import main
from .parser import build_parser

__all__ = ["build_parser", "main", "read_landmarks"]
