"""Write a :class:`Template` to a folder, atomically: everything appears at once or nothing does.

Layout of ``OUTDIR`` (mesh format by ``fmt``: vtp, vtk, ply or gii, the formats that keep point
data; every coordinate in the template frame, mm)::

    template.vtp                    the template mesh
    subjects/NAME.vtp               subject NAME in the template's vertex indexing (template faces),
                                    point data "displacement" (N, 3): offset from the template
    subjects/NAME_displacement.csv  template_index, dx, dy, dz (mm)
    subjects/NAME_alignment.txt     4x4 map subject -> template frame (column vectors, mm)
    modes/mean.vtp                  weighted mean of the corresponded subjects
    modes/mode_KK_minus2sd.vtp      the mean moved -2 / +2 standard deviations along mode KK,
    modes/mode_KK_plus2sd.vtp       point data "mode" (N, 3): one standard deviation (mm)
    modes/modes.json                variances (mm^2), standard deviations (mm), explained ratios,
                                    each subject's scores (mm)
    summary.json                    Template.summary(): subjects, distances, history, timings, config
    convergence.png                 template move and mean deformation per iteration

Every file is staged and the whole set committed at the end by
:class:`shapeot.core.outputs.OutputSet`: all files appear or none does, and each is created
exclusively. An ``OUTDIR`` that holds files is written into only with ``overwrite=True``, which
replaces the files of the same names and nothing else (other files in the folder are kept).
Numbers in the CSV and text files are written in full precision.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shapeot.core.formats import WRITABLE_MESH_FORMATS, safe_stem

from .result import Template

__all__ = ["write_template", "check_template_folder", "convergence_plot", "MESH_FORMATS", "file_stem"]

MESH_FORMATS = WRITABLE_MESH_FORMATS


def file_stem(name: str) -> str:
    """A file-system-safe stem from a shape name (its mesh or scan extension removed)."""
    return safe_stem(name)


def convergence_plot(tpl: Template, path: str | os.PathLike) -> None:
    """A PNG of the template's moves (log scale, with the tolerance) and the mean deformation per
    iteration, and the Procrustes changes. matplotlib is imported here, with the Agg canvas only
    (no pyplot: the process's backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    its = [h for h in tpl.history if h.stage == "template"]
    gpa = [h for h in tpl.history if h.stage == "procrustes"]
    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 1)
    x = [h.step + 1 for h in its]
    ax.semilogy(x, [max(h.value, 1e-6) for h in its], "o-", label="surface move (RMS along normals)")
    ax.semilogy(x, [max(h.extra["move_rms_mm"], 1e-6) for h in its], "s--", label="vertex move (RMS)")
    ax.axhline(tpl.config.tolerance_mm, color="grey", lw=1, ls=":", label="tolerance")
    ax.set_xlabel("iteration")
    ax.set_ylabel("mm")
    ax.set_title("barycenter fixed point")
    ax.legend(fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.plot(x, [h.extra["deformation_rms_mm"] for h in its], "o-", label="mean deformation to subjects (RMS)")
    if gpa:
        ax2.plot([-(len(gpa) - 1 - i) for i in range(len(gpa))], [h.extra["change_mm"] for h in gpa], "^-",
                 label="Procrustes change (rounds before 1)")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("mm")
    ax2.set_title("deformation and alignment")
    ax2.legend(fontsize=8)
    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")


_OVERLAY_SUFFIXES = (".label.gii", ".func.gii", ".shape.gii", ".gii", ".annot", ".label", ".mgh", ".mgz", ".csv")


def overlay_file_name(name: str, tag: str, morph: bool = False) -> str:
    """``name`` with ``.tag`` before its overlay suffix (``lh.aparc.annot`` -> ``lh.aparc.mode.annot``),
    or after it for suffix-less FreeSurfer morph names (``lh.thickness`` -> ``lh.thickness.mean``);
    ``morph``: a morph file made from another format, without the suffix (``lh.aparc.agreement``)."""
    lower = name.lower()
    suffix = next((s for s in _OVERLAY_SUFFIXES if lower.endswith(s)), "")
    stem = name[:len(name) - len(suffix)]
    return f"{stem}.{tag}" if morph else f"{stem}.{tag}{name[len(name) - len(suffix):]}"


def _write_overlays(tpl: Template, root: Path, outputs, overlays: dict) -> None:
    from shapeot.shapes.overlays import overlay_format, write_overlay_file

    for name, parts in overlays.items():
        for tag, ov in parts.items():
            path = root / "overlays" / overlay_file_name(name, tag, morph=ov.format == "morph")
            fmt = ov.format if ov.format is not None else overlay_format(path, for_writing=True)
            write_overlay_file(ov, outputs.stage(path), fmt, surface=tpl.shape)


def _subject_stems(names) -> list[str]:
    stems, seen = [], {}
    for name in names:
        stem = file_stem(name)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def check_template_folder(outdir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check, before the work, that ``outdir`` can receive a template.

    Raises
    ------
    FileExistsError
        If ``outdir`` is a file, or holds files and ``overwrite`` is False.
    PermissionError, NotADirectoryError
        If it cannot be created or written.
    """
    from shapeot.core.outputs import check_writable_folder

    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} is a file; give a folder name for the outputs")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"output {out} exists; pass --overwrite (overwrite=True) to write into it, replacing "
                              "the files of the same names (other files are kept)")
    check_writable_folder(out)
    return out


def write_template(tpl: Template, outdir: str | os.PathLike, *, overwrite: bool = False, fmt: str = "vtp",
                   plot: bool = True, inputs=(), overlays: dict | None = None,
                   summary: str | os.PathLike | None = None) -> list[Path]:
    """Write the template, the corresponded subjects, the modes, a summary and a plot (module docstring).

    Parameters
    ----------
    tpl : Template
    outdir : str or PathLike
        The folder to write (created if needed).
    overwrite : bool, default: False
        Write into a folder that holds files, replacing only the files written here.
    fmt : {"vtp", "vtk", "ply", "gii"}, default: "vtp"
        Mesh format (all keep the displacement / mode point data).
    plot : bool, default: True
        Write ``convergence.png`` (needs matplotlib).
    inputs : iterable of paths
        Files never to write (the subjects' files are always added).
    overlays : dict, optional
        ``{overlay file name: {tag: Overlay}}`` from :func:`shapeot.templates.overlays.template_overlays`
        (tags "mean" and "sd", or "mode" and "agreement"): written to ``overlays/`` in the
        overlay's own format, the tag before its suffix (``lh.thickness.mean``, ``lh.aparc.mode.annot``).
    summary : path, optional
        Also write the summary JSON there.

    Returns
    -------
    list of Path
        The files written, under their final names.

    Raises
    ------
    FileExistsError
        If ``outdir`` holds files and ``overwrite`` is False, or if an output appeared during
        the run; nothing is written then.
    """
    from shapeot.core.outputs import OutputSet

    if fmt not in MESH_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(MESH_FORMATS)} (formats that keep point data); got {fmt!r}")
    out = check_template_folder(outdir, overwrite=overwrite)
    sources = [s.source.path for s in tpl.subjects if getattr(s, "source", None) is not None]
    with OutputSet(overwrite=overwrite, inputs=[*inputs, *sources]) as outputs:
        if summary is not None:
            outputs.add(summary)  # checked before the work
        _write_all(tpl, out, outputs, fmt, plot)
        _write_overlays(tpl, out, outputs, overlays or {})
        if summary is not None:
            from shapeot.core.outputs import json_text

            outputs.stage(summary).write_text(json_text(tpl.summary()))
        written = outputs.commit()
    root = out.absolute()
    return [out / Path(p).relative_to(root) if Path(p).is_relative_to(root) else Path(p) for p in written]


def _write_all(tpl: Template, root: Path, outputs, fmt: str, plot: bool) -> None:
    from shapeot.core.outputs import json_text, write_csv_rows
    from shapeot.core.version import version
    from shapeot.shapes.writing import check_output_path, write_shape

    def save(shape, path: Path) -> None:
        write_shape(shape, outputs.stage(path), check_output_path(path, shape), display=path)

    save(tpl.shape.replace(name="template"), root / f"template.{fmt}")
    for s, stem in enumerate(_subject_stems(tpl.names)):
        corr = tpl.corresponded_shape(s)
        save(corr, root / "subjects" / f"{stem}.{fmt}")
        d = np.asarray(corr.point_data["displacement"], dtype=np.float64)
        write_csv_rows(outputs.stage(root / "subjects" / f"{stem}_displacement.csv"),
                       ["template_index", "dx", "dy", "dz"], ([i, *row] for i, row in enumerate(d)))
        np.savetxt(outputs.stage(root / "subjects" / f"{stem}_alignment.txt"), tpl.alignments[s], fmt="%.17g",
                   header=f"4x4 map {tpl.names[s]} -> template frame (mm), acting on column vectors [x y z 1]")
    save(tpl.shape.with_points(tpl.modes.mean, weights=None, name="mean"), root / "modes" / f"mean.{fmt}")
    for k in range(tpl.modes.n_modes):
        for sd, tag in ((-2.0, "minus2sd"), (2.0, "plus2sd")):
            save(tpl.mode_shape(k, sd), root / "modes" / f"mode_{k + 1:02d}_{tag}.{fmt}")
    outputs.stage(root / "modes" / "modes.json").write_text(
        json_text({"shapeot_version": version(), "subjects": list(tpl.names), **tpl.modes.summary()}))
    outputs.stage(root / "summary.json").write_text(json_text(tpl.summary()))
    if plot:
        convergence_plot(tpl, outputs.stage(root / "convergence.png"))
