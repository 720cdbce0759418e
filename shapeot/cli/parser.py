"""The command line's arguments: one parser, its sub-commands, the option groups they share.

Global options (``--quiet``, ``--threads``) are accepted before or after the sub-command; every
command that registers takes ``--config``, ``--print-config`` and ``--json``, one device
default (``auto``) and one list of backends.
"""
from __future__ import annotations

import argparse

from . import options
from .common import BACKENDS, PRESETS

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shapeot", description="3D shape analysis with optimal transport.")
    p.add_argument("--version", action="version", version=f"shapeot {_version()}")
    options.global_options(p, None)
    p.set_defaults(quiet=False)
    shared = argparse.ArgumentParser(add_help=False)
    options.global_options(shared, argparse.SUPPRESS)  # after the sub-command too, without resetting them
    sub = p.add_subparsers(dest="command", required=True)
    from . import files, matching, register, template

    m = sub.add_parser("match", parents=[shared], help="write OT correspondences between two meshes (CSV)")
    m.add_argument("source")
    m.add_argument("target")
    m.add_argument("-o", "--output", required=True, help="CSV file to write (.csv)")
    m.add_argument("--blur", type=float, default=None, help="blur in mm (default: 1%% of the diameter)")
    m.add_argument("--reach", type=float, default=None, help="reach in mm for unbalanced OT (default: balanced)")
    m.add_argument("--scaling", type=float, default=0.8, help="epsilon-scaling ratio in (0, 1) (default 0.8)")
    m.add_argument("--backend", default="auto", choices=BACKENDS, help="OT backend (default auto)")
    m.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    options.inputs(m, "label value (or segment name) of the surface to extract from label-map inputs")
    m.set_defaults(func=matching.cmd_match)

    r = sub.add_parser("register", parents=[shared],
                       help="register SOURCE onto TARGET: warped mesh, displacement, correspondences",
                       description="Presets: rigid (OT pre-alignment by rotation and translation); affine (rigid, "
                                   "then affine rounds); nonrigid (rigid, then coarse-to-fine Gaussian kernel "
                                   "splines, normals in the cost, each step injective); diffeomorphic (rigid, then "
                                   "LDDMM geodesic shooting and the finest spline levels in injective steps).")
    r.add_argument("source", help="mesh, label map (with --label), FreeSurfer subject folder or subject ID")
    r.add_argument("target", help="mesh, label map, FreeSurfer subject folder or subject ID")
    r.add_argument("-o", "--output", default=None,
                   help="warped mesh to write (format by extension: .vtp, .vtk, .ply, .obj, .stl, .gii, lh.pial, "
                        "...); STEM_displacement.csv, STEM_correspondences.csv, STEM_prealign.txt go beside it")
    r.add_argument("--preset", default=None, choices=PRESETS,
                   help="registration preset (described above; default: the --config file's, else nonrigid)")
    options.config(r, "registration")
    r.add_argument("--landmarks", nargs=2, metavar=("SRC", "TGT"),
                   help="corresponding landmarks (CSV or Slicer .fcsv; mm), carried through and scored")
    r.add_argument("--save-transform", metavar="T.npz",
                   help="write the whole map; apply it with `shapeot apply`, `transfer`, `export-itk`")
    options.itk(r)
    r.add_argument("--overlay", action="append", default=[], metavar="FILE",
                   help="per-vertex data of the source (lh.thickness, lh.aparc.annot, .label, .gii, .mgh, .csv; a "
                        "bare name is looked up in a subject's surf/ and label/), written on the target's vertices "
                        "as STEM_NAME in its own format; repeatable")
    options.frame(r)
    options.subjects(r)
    options.engine(r)
    r.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    options.inputs(r, "label value (or segment name) of the surface to extract from label-map inputs")
    r.set_defaults(func=register.cmd_register)

    a = sub.add_parser("apply", parents=[shared], help="move a mesh, a points CSV or landmarks with a saved transform")
    a.add_argument("transform", help="file written by `shapeot register --save-transform`")
    a.add_argument("input", help="mesh (any format shapeot reads, e.g. lh.white), CSV with x,y,z columns, "
                                 "or landmarks (.csv, .fcsv)")
    a.add_argument("-o", "--output", required=True, help="file to write (meshes: the format follows the extension)")
    options.frame(a)
    a.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    a.set_defaults(func=files.cmd_apply)

    t = sub.add_parser("transfer", parents=[shared],
                       help="carry overlays of the source onto the target's vertices with a saved transform")
    t.add_argument("transform", help="file written by `shapeot register --save-transform`")
    t.add_argument("overlays", nargs="+", metavar="OVERLAY",
                   help="morph (lh.thickness), .annot, .label, .gii, .mgh, .csv; a bare name is looked up in the "
                        "source subject's surf/ and label/")
    t.add_argument("-o", "--output", required=True, help="folder: each overlay written as NAME in its own format")
    t.add_argument("--source", default=None, help="the source surface or subject (default: the transform's)")
    t.add_argument("--target", default=None, help="the target surface or subject (default: the transform's)")
    options.subjects(t)
    t.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    t.set_defaults(func=files.cmd_transfer)

    e = sub.add_parser("export-itk", parents=[shared], help="write a saved transform as ITK / ANTs transforms")
    e.add_argument("transform", help="file written by `shapeot register --save-transform`")
    e.add_argument("--source", default=None,
                   help="the source surface or subject: where the fields must be accurate (default: the transform's)")
    options.itk(e)
    options.subjects(e)
    e.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    e.set_defaults(func=files.cmd_export_itk)

    g = sub.add_parser("register-many", parents=[shared],
                       help="register many sources onto one target; one summary table (CSV)")
    g.add_argument("sources", metavar="SOURCE_FOLDER_OR_LIST",
                   help="folder of meshes and/or FreeSurfer subject folders, or a .txt file listing paths")
    g.add_argument("target", help="target mesh, FreeSurfer subject folder or subject ID")
    g.add_argument("-o", "--output", default=None,
                   help="folder: summary.csv and SUBJECT/{warped mesh, transform.npz, summary.json, overlays}")
    g.add_argument("--preset", default=None, choices=PRESETS, help="registration preset (default nonrigid)")
    options.config(g, "registration")
    options.itk(g, names=True)
    g.add_argument("--pattern", default=None, help="shell pattern of the files to use in the folder")
    g.add_argument("--overlay", action="append", default=[], metavar="NAME",
                   help="subject overlay (lh.thickness, lh.aparc.annot) carried onto the target; repeatable")
    g.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                   help="Dask: 'local' (LocalCluster) or tcp://host:port (default: in-process)")
    g.add_argument("--format", default="vtp", choices=["vtp", "vtk", "ply", "gii"], help="mesh format (default vtp)")
    options.subjects(g, hemi=False)
    options.engine(g)
    g.add_argument("--overwrite", action="store_true", help="replace output files that exist (only those)")
    g.set_defaults(func=register.cmd_register_many)

    template.add_parser(sub, shared)
    matching.add_demo_and_backends(sub, shared)
    return p


def _version() -> str:
    from shapeot.core.version import version

    return version()
