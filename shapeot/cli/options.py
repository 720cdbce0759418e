"""Option groups that several sub-commands share (one definition each: one device default, one
backend list, one way to name inputs, configurations and ITK outputs)."""
from __future__ import annotations

import argparse

from .common import BACKENDS, UNIT_CHOICES

__all__ = ["global_options", "engine", "inputs", "subjects", "config", "itk", "frame"]


def global_options(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("--threads", type=int, default=default, metavar="N",
                   help="CPU threads for torch and numba, 1 to 4 x the CPUs (default: all cores)")
    p.add_argument("--quiet", action="store_true", default=default,
                   help="no progress output (results and errors are still printed)")


def engine(q) -> None:
    q.add_argument("--device", default=None,
                   help="torch device: auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N "
                        "(default: the configuration's, auto)")
    q.add_argument("--backend", default=None, choices=BACKENDS, help="OT backend (default: the configuration's, auto)")


def inputs(q, label_help: str) -> None:
    q.add_argument("--label", default=None, help=label_help)
    q.add_argument("--units", default=None, choices=UNIT_CHOICES,
                   help="units of the input files' coordinates where the files do not say (default: from the "
                        "file, else mm unless the size says otherwise, with a warning)")
    q.add_argument("--to-units", default=None, choices=UNIT_CHOICES,
                   help="convert every input to these units before the work (inputs in different units are "
                        "refused otherwise)")


def subjects(q, hemi: bool = True) -> None:
    q.add_argument("--surf", default="pial",
                   help="surface of FreeSurfer subject folders: pial, white, ... or lh.pial (default pial)")
    if hemi:
        q.add_argument("--hemi", default=None, choices=["lh", "rh", "both"],
                       help="hemisphere of subject folders (default: the one --surf names, else lh); both: "
                            "one registration each, outputs named lh.NAME and rh.NAME")
    q.add_argument("--subjects-dir", default=None, metavar="DIR",
                   help="where subject IDs given instead of paths are found (default: $SUBJECTS_DIR)")


def config(q, what: str) -> None:
    q.add_argument("--config", metavar="FILE.toml", default=None,
                   help=f"a {what} configuration (TOML; --print-config shows every field): its fields over the "
                        "preset; a partial table keeps the preset's values")
    q.add_argument("--print-config", action="store_true", help="print the effective configuration (TOML) and exit")
    q.add_argument("--json", default=None, metavar="FILE.json",
                   help="also write a JSON summary (metrics, timings, configuration, shapeot's version)")


def itk(q, names: bool = False) -> None:
    where = " (a name: written in each subject's folder)" if names else ""
    q.add_argument("--itk-transform", metavar="F.h5", default=None,
                   help=f"ITK composite transform (affine + decaying field) moving source points onto the target: "
                        f"SimpleITK, ANTs, Slicer{where}")
    q.add_argument("--itk-inverse", metavar="I.h5", default=None,
                   help=f"the inverse composite transform: resamples source images onto the target's grid{where}")
    q.add_argument("--ants", metavar="PREFIX", default=None,
                   help=f"ANTs' files (target fixed, source moving): PREFIX0GenericAffine.mat, PREFIX1Warp.nii.gz, "
                        f"PREFIX1InverseWarp.nii.gz{where}")
    q.add_argument("--reference", metavar="IMAGE", default=None,
                   help="the fields' grid: an image of the target's space (e.g. its T1); default a box around "
                        "the shapes, wide enough that the field ends at zero")


def frame(q) -> None:
    q.add_argument("--frame", default="target", choices=["target", "source"],
                   help="FreeSurfer frame (volume_info) of moved surfaces: the target subject's (default), in "
                        "whose space they lie, or the source's")
