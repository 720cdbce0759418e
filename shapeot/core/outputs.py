"""Safe output files: checked before the work, staged, then committed as one step.

Every file shapeot writes (:meth:`Shape.save`, :meth:`Correspondences.to_csv`, transforms, ITK
fields, overlays, the registration, batch and template writers, the desktop app's exports) goes
through :class:`OutputSet`:

1. :meth:`OutputSet.add` checks a path *before* anything is computed: not an input, a known
   extension where the caller gives one, not an existing file unless ``overwrite``, a folder
   that exists (or can be created) and is writable.
2. :meth:`OutputSet.stage` gives a temporary path in a hidden staging folder beside the outputs;
   the writer writes there, created with the usual permissions (the umask; never ``mkstemp``'s
   0600).
3. :meth:`OutputSet.commit` moves every staged file into place in one step that SIGINT cannot
   split (the interrupt is held until the step ends): each file is created *exclusively*
   (``os.link``, which fails if the name exists) unless ``overwrite``, so two runs cannot
   silently overwrite each other and a file that appeared at an output path during the run is
   never replaced. If any file cannot be placed, those already placed are removed (and files
   replaced under ``overwrite`` restored): all the outputs appear, or none does.

Leaving the ``with`` block without committing (an exception, ``Cancelled``, Ctrl-C) removes the
staging folder: nothing is left behind.

The text formats are written here too, once: :func:`write_csv_rows` (numbers in full precision)
and :func:`json_text` (strict JSON: no NaN).
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["OutputSet", "InterruptedAfterCommit", "check_writable_folder", "single_output", "write_csv_rows",
           "json_text"]


class InterruptedAfterCommit(KeyboardInterrupt):
    """Ctrl-C arrived while the outputs were being committed; they were committed in full first."""


def check_writable_folder(folder: str | os.PathLike) -> None:
    """Raise if files cannot be created in ``folder`` (or in the existing folder it would be made in).

    Raises
    ------
    NotADirectoryError
        If ``folder`` or one of its parents is a file.
    PermissionError
        If the nearest existing folder is not writable.
    """
    folder = Path(os.path.abspath(folder))
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{probe} is a file, so the folder {folder} cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{probe}: the folder is not writable; choose another output location")


@contextlib.contextmanager
def _sigint_held() -> Iterator[list]:
    """Hold SIGINT for the duration (main thread only); yields a list that is non-empty if one came."""
    caught: list = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except (ValueError, OSError):  # no signals here (embedded interpreter)
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


class OutputSet:
    """A set of output files written together: all of them appear, or none does.

    Parameters
    ----------
    overwrite : bool, default: False
        Replace existing files (only the files of this set; nothing else in their folders).
    inputs : iterable of paths, default: ()
        Files that must never be written (the inputs of the computation).

    Examples
    --------
    >>> with OutputSet() as out:                                   # doctest: +SKIP
    ...     out.add("res/warped.vtp"); out.add("res/summary.json")  # checked now
    ...     result = compute()
    ...     shape.save_to(out.stage("res/warped.vtp"))              # written to a hidden file
    ...     out.stage("res/summary.json").write_text("{}")
    ...     out.commit()                                            # all appear at once
    """

    def __init__(self, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        self.overwrite = bool(overwrite)
        self._inputs = [Path(os.path.abspath(p)) for p in inputs if p]
        self._inputs_real = {Path(os.path.realpath(p)) for p in self._inputs}
        self._finals: list[Path] = []
        self._staged: dict[Path, Path] = {}
        self._stage_dir: Path | None = None
        self.committed = False

    # ------------------------------------------------------------------------------------ checks
    def add(self, path: str | os.PathLike) -> Path:
        """Declare (and check now) an output path; returns it as an absolute Path.

        Raises
        ------
        ValueError
            If it is an input, or is declared twice.
        FileExistsError
            If it exists and ``overwrite`` is False.
        IsADirectoryError, NotADirectoryError, PermissionError
            If it is a folder, or its folder cannot be created or written.
        """
        final = Path(os.path.abspath(path))
        if final in self._finals:
            return final
        if final in self._inputs or Path(os.path.realpath(final)) in self._inputs_real:
            raise ValueError(f"output {path} is one of the inputs; choose another path (inputs are never overwritten)")
        if final.is_dir():
            raise IsADirectoryError(f"output {path} is a folder; give a file name")
        if final.exists() and not self.overwrite:
            raise FileExistsError(f"output {path} exists; pass --overwrite (overwrite=True) to replace it")
        check_writable_folder(final.parent)
        self._finals.append(final)
        return final

    @property
    def paths(self) -> list[Path]:
        """The declared outputs, in order."""
        return list(self._finals)

    # ------------------------------------------------------------------------------------ staging
    def _staging(self) -> Path:
        if self._stage_dir is None:
            base = self._finals[0].parent if self._finals else Path.cwd()
            while not base.exists():
                base = base.parent
            # mkdtemp's folder is private (0700); the files in it are created with the umask.
            self._stage_dir = Path(tempfile.mkdtemp(dir=base, prefix=".shapeot-staging-"))
        return self._stage_dir

    def stage(self, path: str | os.PathLike) -> Path:
        """A temporary path to write ``path``'s content to (same name and extension, so writers
        that choose the format by extension work); declares ``path`` if it was not."""
        final = self.add(path)
        if final not in self._staged:
            sub = self._staging() / str(len(self._staged))
            sub.mkdir()
            self._staged[final] = sub / final.name
        return self._staged[final]

    # ------------------------------------------------------------------------------------ commit
    def commit(self) -> list[Path]:
        """Move every staged file into place, all or none (see the module docstring).

        Raises
        ------
        FileExistsError
            If an output appeared during the run (without ``overwrite``); nothing is written.
        ValueError
            If a declared output was never staged (a writer bug).
        """
        missing = [p for p in self._finals if p not in self._staged or not self._staged[p].exists()]
        if missing:
            raise ValueError(f"internal error: {missing[0]} was declared but never written")
        placed: list[Path] = []
        backups: dict[Path, Path] = {}
        made_dirs: list[Path] = []
        with _sigint_held() as caught:
            try:
                for final in self._finals:
                    for parent in reversed(final.parents):
                        if not parent.exists():
                            parent.mkdir()
                            made_dirs.append(parent)
                    tmp = self._staged[final]
                    if self.overwrite and final.exists():
                        backup = tmp.with_name(tmp.name + ".previous")
                        try:
                            os.link(final, backup)
                        except OSError:  # no hard links here: keep a copy instead
                            shutil.copy2(final, backup)
                        backups[final] = backup
                        os.replace(tmp, final)
                    else:
                        _link_exclusive(tmp, final)
                    placed.append(final)
            except BaseException:
                for final in reversed(placed):
                    with contextlib.suppress(OSError):
                        if final in backups:
                            os.replace(backups[final], final)
                        else:
                            final.unlink()
                for d in reversed(made_dirs):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                raise
            self.committed = True
            self._cleanup()
        if caught:
            raise InterruptedAfterCommit("interrupted after the outputs were written in full")
        return list(self._finals)

    def _cleanup(self) -> None:
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)
            self._stage_dir = None

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()


def _link_exclusive(tmp: Path, final: Path) -> None:
    """Create ``final`` with ``tmp``'s content, failing if ``final`` exists."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise FileExistsError(f"output {final} appeared while shapeot was running (another run?); "
                              "it was left as it is and nothing was written; pass --overwrite to replace it") from None
    except OSError:
        # No hard links on this file system: reserve the name exclusively, then move over it.
        try:
            fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            raise FileExistsError(f"output {final} appeared while shapeot was running (another run?); "
                                  "it was left as it is and nothing was written") from None
        os.close(fd)
        try:
            os.replace(tmp, final)
        except BaseException:
            final.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def single_output(path: str | os.PathLike, *, overwrite: bool = False,
                  inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """One output file: yields the temporary path to write; committed when the block succeeds."""
    with OutputSet(overwrite=overwrite, inputs=inputs) as out:
        tmp = out.stage(path)
        yield tmp
        out.commit()


def write_csv_rows(path: str | os.PathLike, header, rows) -> None:
    """Write a new CSV file (``open(path, "x")``: never over an existing one) with a header row;
    floats in full precision (``repr``: the shortest text that reads back as the same float64,
    so 1e-6 mm stays 1e-06), integers as integers, text as text."""
    with open(path, "x", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([_cell(c) for c in row])


def _cell(c):
    if isinstance(c, (bool, np.bool_)):
        return int(c)
    if isinstance(c, (float, np.floating)):
        return repr(float(c))
    if isinstance(c, (int, np.integer)):
        return int(c)
    return "" if c is None else str(c)


def _finite(value):
    """JSON has no NaN or infinity: write them as null; numpy values and paths as plain data."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def json_text(data) -> str:
    """Strict JSON (non-finite numbers become null, numpy values plain numbers)."""
    return json.dumps(_finite(data), indent=1, allow_nan=False)
