"""What the commands share: the one-line error, the progress printer, inputs, configurations, tables."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["CliError", "Bar", "UNIT_CHOICES", "BACKENDS", "PRESETS", "load_input", "resolve_input", "same_units",
           "check_device", "registration_config", "template_config", "metrics_table", "timing_line", "hemis",
           "hemi_path", "quiet"]

UNIT_CHOICES = ("mm", "cm", "m", "um")
#: One backend list for every command.
BACKENDS = ("auto", "torch", "keops", "triton")
PRESETS = ("rigid", "affine", "nonrigid", "diffeomorphic")
_STATE = {"quiet": False}


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def quiet(value: bool | None = None) -> bool:
    """Whether --quiet was given (set once by ``main``)."""
    if value is not None:
        _STATE["quiet"] = bool(value)
    return _STATE["quiet"]


class Bar:
    """The library's ``progress(fraction, message)`` on stderr: a tqdm bar on a terminal; plain
    time-stamped lines where stderr is a file or a pipe (a bar's carriage returns would be noise):
    a line at each new stage (the message up to its second colon), every 5 %, and at least every
    20 s while anything is reported; nothing with --quiet."""

    EVERY = 0.05
    SECONDS = 20.0

    def __init__(self):
        self._bar = None
        self._last = ("", -1.0, 0.0)
        self._t0 = time.perf_counter()
        if quiet() or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
                         file=sys.stderr, leave=False)

    def __call__(self, fraction: float, message: str) -> bool:
        if self._bar is not None:
            n = int(round(1000 * fraction))
            if n > self._bar.n:
                self._bar.update(n - self._bar.n)
            self._bar.set_postfix_str(message, refresh=False)
        elif not quiet():
            head = ":".join(message.split(":")[:2])
            now = time.perf_counter() - self._t0
            last_head, last_fraction, last_time = self._last
            if head != last_head or fraction >= last_fraction + self.EVERY or now >= last_time + self.SECONDS:
                self._last = (head, fraction, now)
                print(f"[{now:7.1f} s] {100 * fraction:3.0f} % {message}", file=sys.stderr, flush=True)
        return True

    def close(self):
        if self._bar is not None:
            self._bar.close()


# ------------------------------------------------------------------------------------ inputs
def hemis(args) -> list[str]:
    """The hemispheres asked for: ``--hemi lh|rh|both``, else the one ``--surf`` names (lh by default)."""
    from shapeot.shapes.freesurfer import hemisphere_surface

    hemi = getattr(args, "hemi", None)
    if hemi == "both":
        return ["lh", "rh"]
    return [hemisphere_surface(getattr(args, "surf", "pial"), hemi)[0]]


def hemi_path(path: str | os.PathLike | None, hemi: str, args) -> Path | None:
    """``path`` with ``hemi.`` before its file name when both hemispheres are registered (FreeSurfer's
    naming: out/lh.warped.vtp and out/rh.warped.vtp)."""
    if path is None:
        return None
    p = Path(path)
    return p.with_name(f"{hemi}.{p.name}") if getattr(args, "hemi", None) == "both" else p


def resolve_input(name: str | os.PathLike, args) -> Path:
    """A path as given, or a subject ID under ``--subjects-dir`` / ``$SUBJECTS_DIR``."""
    from shapeot.shapes.freesurfer import resolve_subject

    p = Path(name)
    if p.exists():
        return p
    subject = resolve_subject(p, getattr(args, "subjects_dir", None))
    if subject is not None:
        return subject
    base = getattr(args, "subjects_dir", None) or os.environ.get("SUBJECTS_DIR")
    where = (f" (nor a subject of SUBJECTS_DIR={base})" if base else
             " (give a path, or a subject ID with --subjects-dir)")
    raise CliError(f"{name}: no such file or folder{where}")


def load_input(path: Path, args, hemi: str | None = None, label=None, convert: bool = True):
    """Read an input with the command's --label / --units (and --to-units unless ``convert`` is
    False), and for subject folders the surface of ``--surf`` on ``hemi``."""
    from shapeot.shapes import load
    from shapeot.shapes.freesurfer import hemisphere_surface

    surf = None
    if path.is_dir():
        surf = hemisphere_surface(getattr(args, "surf", "pial"), hemi)[1]
    shape = load(path, label, units=getattr(args, "units", None), surf=surf)
    if convert and getattr(args, "to_units", None):
        shape = shape.to_units(args.to_units)
    return shape


def same_units(source, target) -> None:
    if source.units != target.units:
        raise CliError(f"source is in {source.units} and target in {target.units}; pass --to-units {target.units} "
                       "to convert them, or --units if a file's units were inferred wrongly")


def check_device(name: str) -> str:
    """The --device value, checked now by the engine's one device rule (a bad name or a missing
    GPU is a user error, not a traceback); "auto" becomes the device it picks."""
    from shapeot.ot.device import resolve_device

    try:
        return str(resolve_device(name))
    except ValueError as exc:
        raise CliError(f"--device: {exc}") from None


# ------------------------------------------------------------------------------------ configurations
def _toml(path: str | None, what: str) -> dict:
    if not path:
        return {}
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"--config {path}: {exc}") from None


def registration_config(args):
    """The preset (``--preset``, else the ``--config`` file's ``preset``, else nonrigid), the
    ``--config`` TOML file's fields over it (``RegistrationConfig.from_dict``: a partial
    [[levels]] table keeps the preset's level), then ``--device`` / ``--backend`` when given."""
    from shapeot.registration import RegistrationConfig

    fields = _toml(getattr(args, "config", None), "registration")
    engine = {k: getattr(args, k) for k in ("device", "backend") if getattr(args, k, None) is not None}
    if engine:
        fields["engine"] = {**fields.get("engine", {}), **engine}
    preset = getattr(args, "preset", None) or fields.get("preset") or "nonrigid"
    try:
        return RegistrationConfig.from_dict(fields, preset=preset)
    except ValueError as exc:
        raise CliError(f"--config {args.config}: {exc}" if getattr(args, "config", None) else str(exc)) from None


def template_config(args):
    """``TemplateConfig``: the ``--config`` file's fields (a ``[registration]`` table is read over
    the template's own registration configuration), then the command line's options."""
    from shapeot.templates import TemplateConfig

    fields = _toml(args.config, "template")
    for key, value in (("preset", args.preset), ("iterations", args.iterations), ("tolerance_mm", args.tolerance),
                       ("n_modes", args.modes)):
        if value is not None:
            fields[key] = value
    engine = {k: getattr(args, k) for k in ("device", "backend") if getattr(args, k, None) is not None}
    if engine:
        fields.setdefault("registration", {})
        fields["registration"]["engine"] = {**fields["registration"].get("engine", {}), **engine}
    try:
        return TemplateConfig.from_dict(fields)
    except ValueError as exc:
        raise CliError(f"--config {args.config}: {exc}" if args.config else str(exc)) from None


# ------------------------------------------------------------------------------------ reports
def metrics_table(metrics: dict, units: str) -> str:
    """The brief rows of :data:`shapeot.metrics.METRICS`, and a note when the warp turned over."""
    from shapeot.metrics.table import metric_rows
    from shapeot.registration.report import warp_advice

    rows = metric_rows(metrics, units=units, brief=True)
    width = max([len(label) for _, label, _, _ in rows] + [30])
    lines = [f"{'metric':<{width}} {'before':>10} {'after':>10}"]
    lines += [f"{label:<{width}} {before:>10} {after:>10}" for _, label, before, after in rows]
    advice = warp_advice(metrics.get("after", {}))
    if advice:
        lines.append(f"note: {advice}")
    return "\n".join(lines)


_STAGE_NAMES = {"prealign": "pre-alignment", "nonrigid": "non-rigid", "finetune": "fine-tuning", "metrics": "metrics"}


def timing_line(timings: dict) -> str:
    """"time T s (stage t s, ...)" for the stages that ran."""
    parts = ", ".join(f"{name} {timings[key]:.1f} s" for key, name in _STAGE_NAMES.items() if key in timings)
    return f"time {timings['total']:.1f} s ({parts})"
