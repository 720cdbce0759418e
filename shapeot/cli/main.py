"""``main()``: parse, set the threads, run the command, turn expected errors into one line."""
from __future__ import annotations

import contextlib
import os
import sys
import warnings

from shapeot.core.errors import Cancelled

from .common import CliError, quiet
from .parser import build_parser

__all__ = ["main"]


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"shapeot: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 cancelled or interrupted).

    Expected errors (bad files or arguments, a device or backend that cannot run, outputs that
    exist) print one line; set ``SHAPEOT_DEBUG=1`` to see the traceback instead.
    """
    args = build_parser().parse_args(argv)
    quiet(bool(args.quiet))
    cores = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= 4 * cores:
        print(f"shapeot: error: --threads must be between 1 and {4 * cores} (4 x the {cores} CPUs here); "
              f"got {args.threads}", file=sys.stderr)
        return 2
    with _threads(args.threads), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


@contextlib.contextmanager
def _threads(n: int | None):
    """torch's and numba's CPU threads set to ``n`` for the command and restored afterwards, so
    that ``main()`` called in-process (tests, scripts) leaves the process as it found it."""
    if n is None:
        yield
        return
    import torch

    torch_before = torch.get_num_threads()
    torch.set_num_threads(n)
    numba = None
    with contextlib.suppress(ImportError):
        import numba
    numba_before = numba.get_num_threads() if numba is not None else None
    if numba is not None:  # at most the threads numba launched (NUMBA_NUM_THREADS, all cores by default)
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        if numba is not None:
            numba.set_num_threads(numba_before)


def _run(args) -> int:
    """The command, with expected errors as one line and an exit status."""
    from shapeot.core.outputs import InterruptedAfterCommit

    try:
        return args.func(args)
    except (CliError, ValueError, OSError, ImportError, RuntimeError, ArithmeticError) as exc:
        # RuntimeError: the engine's BackendUnavailable, torch device errors;
        # ArithmeticError: a non-finite solution (FloatingPointError).
        if os.environ.get("SHAPEOT_DEBUG") == "1":
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, (RuntimeError, ArithmeticError)) and not isinstance(exc, CliError):
            text = f"{type(exc).__name__}: {text}"
        print(f"shapeot: error: {text}", file=sys.stderr)
        return 2
    except Cancelled:
        print("shapeot: cancelled; nothing was written", file=sys.stderr)
        return 130
    except InterruptedAfterCommit:
        print("shapeot: interrupted; the outputs had been written in full and were kept", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("shapeot: interrupted; nothing was written", file=sys.stderr)
        return 130
