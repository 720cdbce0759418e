"""Many subjects onto one target: :func:`register_many`, in this process or on a Dask cluster.

Every source is registered onto the same target with the same configuration, independently, so
the pairs run through the executors of population templates (:mod:`shapeot.core.executors`:
in-process by default, ``"local"`` for a Dask ``LocalCluster``, a scheduler address, or a
``distributed.Client``). A subject that fails (an unreadable file, a registration error) is
reported in the summary and the others finish.

Outputs, in ``outdir``::

    summary.csv                  one row per subject: status, error, vertices, seconds, metrics
                                 before/after (mm), output files
    SUBJECT/warped.vtp           the source moved onto the target (same faces)
    SUBJECT/transform.npz        the whole map (shapeot.deform.serialize: apply it to other files)
    SUBJECT/summary.json         Registration.summary()
    SUBJECT/OVERLAY              each requested overlay on the target's vertices, in its own format

Files are read on the workers (only paths travel) and written by the calling process (a cluster
needs no shared file system for the outputs).
"""
from __future__ import annotations

import csv
import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shapeot.core.formats import is_mesh_file

from .write import output_stem

__all__ = ["register_many", "BatchResult", "list_sources"]


@dataclasses.dataclass
class BatchResult:
    """What :func:`register_many` did.

    Attributes
    ----------
    rows : list of dict
        One per source, in input order: ``subject``, ``source``, ``status`` ("ok" or "failed"),
        ``error``, ``n_vertices``, ``seconds``, ``before_*`` / ``after_*`` metrics (mm), ``outputs``.
    summary_csv : Path
    outdir : Path
    executor : str
    """

    rows: list
    summary_csv: Path
    outdir: Path
    executor: str

    @property
    def failed(self) -> list:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def ok(self) -> list:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def skipped(self) -> list:
        return [r for r in self.rows if r["status"] == "skipped"]


def list_sources(sources, *, surf: str = "lh.pial", pattern: str | None = None) -> list[tuple[str, Any]]:
    """(subject name, source) pairs from a folder, a text file listing paths, or a sequence.

    A folder yields its FreeSurfer subject folders (subfolders with ``surf/``: their ``surf``
    surface) and its mesh files (``pattern``, e.g. ``"*.gii"``, filters them); a ``.txt`` /
    ``.lst`` file lists one path per line (``#`` comments); a sequence holds paths or Shapes.
    """
    from shapeot.shapes.freesurfer import is_subject_dir

    items: list = []
    if isinstance(sources, (str, os.PathLike)):
        p = Path(sources)
        if p.is_dir() and not is_subject_dir(p):
            entries = sorted(p.iterdir())
            if pattern:
                entries = [e for e in entries if e.match(pattern)]
            items = [e for e in entries if is_subject_dir(e)
                     or (e.is_file() and is_mesh_file(e))]
            if not items:
                raise FileNotFoundError(f"{p}: no FreeSurfer subject folders or mesh files found")
        elif p.is_file() and p.suffix.lower() in (".txt", ".lst", ".list"):
            base = p.parent
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    items.append(q if q.is_absolute() else base / q)
        else:
            items = [p]
    else:
        items = list(sources)
    out, seen = [], set()
    for item in items:
        if hasattr(item, "points"):
            name = getattr(item, "name", "") or f"subject_{len(out) + 1:02d}"
        else:
            item = Path(item)
            name = item.name if item.is_dir() else output_stem(item)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "subject"
        base, n = name, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        out.append((name, item if hasattr(item, "points") else str(item)))
    return out


def _load(source, surf: str):
    if hasattr(source, "points"):
        return source
    from shapeot.shapes import load

    return load(source, surf=surf)  # a FreeSurfer subject folder gives its surface surf


def _register_one(name: str, source, target, config, surf: str, overlays: tuple, progress=None) -> dict:
    """One pair, on whatever worker: never raises except on cancel; returns plain data."""
    from shapeot.core.errors import Cancelled

    from .pipeline import register

    t0 = time.perf_counter()
    row: dict[str, Any] = {"subject": name, "source": source if isinstance(source, str) else name,
                           "status": "ok", "error": ""}
    try:
        shape = _load(source, surf)
        row["n_vertices"] = int(shape.n_points)
        row["source_path"] = _path_of(shape)
        reg = register(shape, target, config, progress=progress)
        transferred = []
        if overlays:
            from shapeot.shapes.freesurfer import load_subject_overlay

            from .transfer import transfer_with_map

            for ov_name in overlays:
                ov = load_subject_overlay(source, ov_name, shape) if isinstance(source, str) and \
                    os.path.isdir(source) else None
                if ov is None:
                    raise ValueError(f"overlay {ov_name}: overlays are read from FreeSurfer subject folders")
                # the resampling of `shapeot transfer` (a saved transform gives the same values)
                transferred.append(transfer_with_map(ov, reg.source, reg.target, reg.deformation))
        for stage in ("before", "after"):
            for k, v in (reg.metrics.get(stage) or {}).items():
                if isinstance(v, (int, float, np.floating, np.integer)):
                    row[f"{stage}_{k}"] = float(v)
        row["seconds"] = time.perf_counter() - t0
        return {"row": row, "warped": reg.warped, "deformation": reg.deformation, "points": np.asarray(shape.points),
                "summary": reg.summary(), "overlays": transferred}
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - one subject's failure is reported, the others go on
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc(limit=6)
        row["seconds"] = time.perf_counter() - t0
        return {"row": row}


def _write_csv(rows: list[dict], path: Path, overwrite: bool) -> None:
    """The summary table, through the one safe writer (created exclusively unless ``overwrite``)."""
    from shapeot.core.outputs import single_output

    first = ["subject", "source", "status", "error", "n_vertices", "seconds"]
    metric_cols = sorted({k for r in rows for k in r if k.startswith(("before_", "after_"))})
    cols = first + metric_cols + ["outputs"]
    with single_output(path, overwrite=overwrite) as tmp, open(tmp, "x", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in cols})


def _write_subject(folder: Path, res: dict, row: dict, target, mesh_format: str, save_transforms: bool,
                   overwrite: bool, itk: dict | None = None) -> list[Path]:
    """One subject's files (warped mesh, transform, ITK / ANTs files, summary, overlays), all or none."""
    from shapeot.core.outputs import OutputSet, json_text
    from shapeot.deform.serialize import write_transform_file
    from shapeot.shapes.freesurfer import frame_of
    from shapeot.shapes.overlays import overlay_format, write_overlay_file
    from shapeot.shapes.writing import check_output_path, write_shape

    mesh = folder / f"warped.{mesh_format.lstrip('.')}"
    with OutputSet(overwrite=overwrite) as outputs:
        write_shape(res["warped"], outputs.stage(mesh), check_output_path(mesh, res["warped"]), display=mesh)
        if save_transforms:
            write_transform_file(res["deformation"], outputs.stage(folder / "transform.npz"),
                                 target_frame=frame_of(target),
                                 meta={"source": row["source"], "target": target.name,
                                       "source_path": row.get("source_path"), "target_path": _path_of(target)})
        if itk and any(itk.get(k) for k in ("forward", "inverse", "ants_prefix")):
            from shapeot.deform.itk import export_itk

            export_itk(res["deformation"], res["points"], outputs=outputs, reference=itk.get("reference"),
                       **{k: (folder / itk[k] if itk.get(k) else None) for k in ("forward", "inverse", "ants_prefix")})
        outputs.stage(folder / "summary.json").write_text(json_text(res["summary"]))
        for ov in res["overlays"]:
            path = folder / ov.name
            write_overlay_file(ov, outputs.stage(path), overlay_format(path, for_writing=True), surface=target)
        return outputs.commit()


def _path_of(shape) -> str | None:
    src = getattr(shape, "source", None)
    return None if src is None or src.path is None else str(Path(src.path).resolve())


def register_many(sources, target, config=None, outdir: str | os.PathLike | None = None, *, executor=None,
                  surf: str = "lh.pial", pattern: str | None = None, mesh_format: str = "vtp",
                  overlays: Sequence[str] = (), save_transforms: bool = True, overwrite: bool = False,
                  progress: Callable[[float, str], bool] | None = None, itk: dict | None = None,
                  summary_json: str | os.PathLike | None = None) -> BatchResult:
    """Register every source onto ``target``; write each result and one summary table.

    Parameters
    ----------
    sources : folder, list file, or sequence of paths / Shapes
        See :func:`list_sources` (FreeSurfer subject folders use the surface ``surf``).
    target : path, subject folder or Shape
        A source that is the target itself is skipped, and named in the summary.
    config : RegistrationConfig or preset name, optional
        Default: the ``nonrigid`` preset.
    outdir : path
        Created if needed; existing subject outputs are refused unless ``overwrite``.
    executor : None, "local", a scheduler address, a distributed.Client or an executor
        As for :func:`shapeot.template` (:func:`shapeot.core.executors.open_executor`).
    surf : str, default: "lh.pial"
    pattern : str, optional
        Shell pattern filtering a folder's entries.
    mesh_format : str, default: "vtp"
        Extension of the warped meshes.
    overlays : sequence of str
        Overlay file names of each subject folder (``lh.thickness``, ``lh.aparc.annot``) to
        carry onto the target's vertices (written in their own format).
    save_transforms : bool, default: True
        Write SUBJECT/transform.npz.
    overwrite : bool, default: False
    progress : callable(fraction, message) -> bool, optional
        Returning False cancels (the pairs not yet finished are dropped; finished ones stay written).
    itk : dict, optional
        ``forward``, ``inverse`` (file names) and ``ants_prefix`` of each subject's ITK / ANTs
        files in its folder, and their ``reference`` grid (:func:`shapeot.deform.itk.export_itk`).
    summary_json : path, optional
        Also write the rows, the configuration and shapeot's version as JSON (with the CSV, last).

    Returns
    -------
    BatchResult
    """
    from .config import RegistrationConfig

    if outdir is None:
        raise ValueError("register_many needs an output folder (outdir)")
    out = Path(outdir)
    config = RegistrationConfig.from_preset(config or "nonrigid") if config is None or isinstance(config, str) \
        else config
    pairs, skipped, tgt = _pairs(sources, target, surf, pattern)
    _check_outputs(out, pairs, overwrite, summary_json)
    results, where = _run(pairs, tgt, config, surf, overlays, executor, progress)
    rows = list(skipped)
    for (name, _), res in zip(pairs, results):
        row = res["row"]
        if row["status"] == "ok":
            try:
                written = _write_subject(out / name, res, row, tgt, mesh_format, save_transforms, overwrite, itk)
                row["outputs"] = ";".join(os.path.relpath(p, os.path.abspath(out)) for p in written)
            except Exception as exc:  # noqa: BLE001 - a write failure is this subject's failure
                row["status"], row["error"] = "failed", f"writing outputs: {type(exc).__name__}: {exc}"
        rows.append(row)
    summary = out / "summary.csv"
    _write_csv(rows, summary, overwrite)  # last: a summary names only outputs that exist
    if summary_json is not None:
        _write_json(rows, config, summary_json, overwrite)
    return BatchResult(rows, summary, out, where)


def _pairs(sources, target, surf: str, pattern: str | None):
    """(the (name, source) pairs to register, rows of the sources skipped and why, the target shape)."""
    pairs = list_sources(sources, surf=surf, pattern=pattern)
    tgt = _load(str(target) if isinstance(target, (str, os.PathLike)) else target, surf)
    tgt_path = Path(str(target)).resolve() if isinstance(target, (str, os.PathLike)) else None

    def is_target(s):
        return isinstance(s, str) and tgt_path is not None and Path(s).resolve() == tgt_path

    skipped = [{"subject": n, "source": s, "status": "skipped", "error": "it is the target"}
               for n, s in pairs if is_target(s)]
    pairs = [(n, s) for n, s in pairs if not is_target(s)]
    if not pairs:
        raise ValueError("no sources to register (the target itself is skipped)")
    return pairs, skipped, tgt


def _check_outputs(out: Path, pairs, overwrite: bool, summary_json) -> None:
    if overwrite:
        return
    clash = [n for n, _ in pairs if (out / n).exists()]
    clash += [p.name for p in (out / "summary.csv", Path(summary_json) if summary_json else None)
              if p is not None and p.exists()]
    if clash:
        raise FileExistsError(f"{out}: outputs exist for {', '.join(clash[:5])}; pass overwrite=True")


def _run(pairs, tgt, config, surf: str, overlays, executor, progress):
    """Every pair through the executor; (results in order, the executor's name)."""
    from shapeot.core.errors import Cancelled
    from shapeot.core.executors import open_executor

    n = len(pairs)
    fractions = [0.0] * n

    def report(i: int, fraction: float, message: str) -> None:
        fractions[i] = max(fractions[i], float(fraction))
        if progress is not None and progress(sum(fractions) / n, f"{pairs[i][0]}: {message}") is False:
            raise Cancelled("register_many cancelled")

    with open_executor(executor) as ex:
        handle = ex.put(tgt)
        jobs = [(name, src, handle, config, surf, tuple(overlays)) for name, src in pairs]
        return ex.map(_register_one, jobs, report), ex.name


def _write_json(rows: list[dict], config, path, overwrite: bool) -> None:
    from shapeot.core.outputs import json_text, single_output
    from shapeot.core.version import version

    plain = [{k: v for k, v in r.items() if k != "traceback"} for r in rows]
    with single_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(json_text({"shapeot_version": version(), "config": config.to_dict(), "subjects": plain}))
