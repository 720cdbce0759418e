"""``shapeot-gui``: the desktop application's entry point.

    shapeot-gui [FILES ...] [--label L] [--samples] [--register | --match] [--preset P]
                [--template FOLDER [--pattern GLOB] [--mode K:SD]] [--demo] [--show LAYERS] [--hide LAYERS]
                [--screenshot OUT.png] [--exit] [--settings FILE] [--size WxH]

Files are opened as if chosen in File ▸ Open; ``--register`` / ``--match`` run once they are
read; ``--screenshot`` saves the whole window when everything has finished; ``--exit`` then
quits (exit status 1 if anything failed or was cancelled), printing errors to stderr instead of
showing dialogs, and runs on the default settings without writing the user's (unless ``--settings``
or ``$SHAPEOT_GUI_SETTINGS`` names a file). Example (for docs and checks)::

    xvfb-run -a shapeot-gui lh.gii rh.gii --register --screenshot out.png --exit
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["build_parser", "main", "display_available"]


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``shapeot-gui``."""
    from shapeot.registration import PRESETS

    p = argparse.ArgumentParser(prog="shapeot-gui", description="shapeot's desktop app: register, match and "
                                "build templates of 3D shapes, and look at the results.")
    p.add_argument("files", nargs="*", help="meshes or label maps to open")
    p.add_argument("--label", default=None, help="label (value or name) to extract from label maps given as FILES")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--register", action="store_true", help="register the first file onto the second once read")
    what.add_argument("--match", action="store_true", help="OT correspondences from the first file to the second")
    p.add_argument("--preset", default=None, choices=list(PRESETS), help="registration preset (default: last used)")
    p.add_argument("--template", metavar="FOLDER", default=None, help="build a template from the shapes of FOLDER")
    p.add_argument("--pattern", default=None, help="with --template: only the files matching this pattern")
    p.add_argument("--samples", action="store_true",
                   help="open the sample brains: fsaverage5 left pial surface, right one mirrored to the left")
    p.add_argument("--demo", action="store_true", help="--samples, then register them (preset nonrigid)")
    p.add_argument("--show", default="", metavar="LAYERS",
                   help="result layers to show when done, comma-separated (warped, magnitude, lines, arrows, "
                        "template, cohort)")
    p.add_argument("--hide", default="", metavar="LAYERS", help="result layers to hide when done")
    p.add_argument("--mode", default=None, metavar="K:SD",
                   help="with --template: show PCA mode K (1-based) at SD standard deviations when done, e.g. 1:2")
    p.add_argument("--screenshot", metavar="PNG", default=None,
                   help="when everything has finished, save a screenshot of the whole window")
    p.add_argument("--exit", action="store_true", help="quit when everything has finished (after --screenshot)")
    p.add_argument("--settings", metavar="FILE", default=None,
                   help="INI file for the settings (default: the user's; $SHAPEOT_GUI_SETTINGS; with --exit: "
                        "fresh defaults, the user's left untouched)")
    p.add_argument("--size", metavar="WxH", default=None, help="window size, e.g. 1440x900")
    return p


def display_available() -> bool:
    """True when an X server (``$DISPLAY``) accepts connections, or on a non-X platform.

    Checked with Xlib directly (``XOpenDisplay``): Qt aborts the whole process when it cannot
    connect, so this must be asked before a QApplication exists.
    """
    if sys.platform in ("win32", "darwin") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    if not os.environ.get("DISPLAY"):
        return False
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        xlib = ctypes.CDLL(name)
    except OSError:
        return False
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(None)
    if not handle:
        return False
    xlib.XCloseDisplay(handle)
    return True


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"shapeot-gui: error: --size must look like 1440x900; got {text!r}") from None
    return w, h


def _parse_mode(text: str) -> tuple[int, float]:
    try:
        k, sd = text.split(":")
        return int(k), float(sd)
    except ValueError:
        raise SystemExit(f"shapeot-gui: error: --mode must look like 1:2 (mode 1 at +2 SD); got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Open the window for parsed arguments and run the Qt event loop; returns the exit status."""
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from .settings import Settings
    from .window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("shapeot-gui")
    app.setOrganizationName("shapeot")
    window = MainWindow(Settings(_settings_path(args, app)), batch=args.exit)
    size = _parse_size(args.size)
    if size:
        window.resize(*size)
    window.show()
    status = {"code": 0}
    window.tasks.failed.connect(lambda *a: status.update(code=1))
    window.tasks.cancelled.connect(lambda *a: status.update(code=1))
    _start_tasks(window, args)
    if args.screenshot or args.exit:
        done = {"flag": False}

        def on_idle() -> None:
            if not done["flag"]:
                done["flag"] = True
                # let the layout and the 3D view settle
                QTimer.singleShot(600, lambda: _finish(window, app, args, status))

        window.tasks.idle.connect(on_idle)
        if not window.tasks.busy:
            on_idle()
    app.exec_()
    return status["code"]


def _settings_path(args: argparse.Namespace, app) -> str | None:
    """The settings file: --settings, else the user's; a scripted run (--exit) gets a scratch
    file, so that it is reproducible (the defaults and the command line only) and leaves no trace."""
    if args.exit and args.settings is None and not os.environ.get("SHAPEOT_GUI_SETTINGS"):
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="shapeot-gui-")
        app.aboutToQuit.connect(scratch.cleanup)
        return os.path.join(scratch.name, "settings.ini")
    return args.settings


def _start_tasks(window, args: argparse.Namespace) -> None:
    """Open what the command line names and start its task (register, match, template)."""
    if args.preset:
        window.params.preset.setCurrentText(args.preset)
    if args.samples or args.demo:
        window.open_samples()
    if args.demo:
        if not args.preset:
            window.params.preset.setCurrentText("nonrigid")
        if not args.match:
            args.register = True
    if args.files:
        window.open_paths(args.files, label=args.label)
    if args.register:
        window.register()
    elif args.match:
        window.match()
    if args.template:
        if args.pattern:
            window.params.template_pattern.setText(args.pattern)
        window.build_template(args.template)


def _finish(window, app, args: argparse.Namespace, status: dict) -> None:
    """Once the tasks are done: the mode, the layers asked for, the screenshot; quit with --exit."""
    if args.mode:
        k, sd = _parse_mode(args.mode)
        window.scene.set_mode(k - 1, sd)
    for names, visible in ((args.show, True), (args.hide, False)):
        for name in filter(None, (n.strip() for n in names.split(","))):
            if name in window.scene.layers:
                window.scene.set_layer_visible(name, visible)
            else:
                print(f"shapeot-gui: warning: no result layer {name!r} "
                      f"(there are: {', '.join(window.scene.layers) or 'none'})", file=sys.stderr)
    if args.screenshot:
        try:
            path = window.save_screenshot(args.screenshot)
            print(f"shapeot-gui: wrote {path}")
        except Exception as exc:  # noqa: BLE001
            print(f"shapeot-gui: error: screenshot: {exc}", file=sys.stderr)
            status["code"] = 1
    if args.exit:
        window.close()
        app.quit()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``shapeot-gui`` (see the module docstring)."""
    args = build_parser().parse_args(argv)
    _parse_size(args.size)
    if args.mode:
        _parse_mode(args.mode)
    if not display_available():
        print("shapeot-gui: error: no display: set DISPLAY (or run under xvfb-run); for a headless run use "
              "`python -m shapeot demo` or `shapeot register`", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
