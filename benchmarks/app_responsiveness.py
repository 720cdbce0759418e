"""The desktop app's responsiveness during Register, at the sample brain's native densities.

    .venv/bin/python benchmarks/app_responsiveness.py [--loop 0 1 2] [--preset nonrigid] [--fast]
                                                      [--threads N] [--tag NAME]
    .venv/bin/python benchmarks/app_responsiveness.py --sizes 10k 41k     # the same as --loop 0 1
    .venv/bin/python benchmarks/app_responsiveness.py --loop 0 --fast     # a quick check (about a minute)

Runs the real app (shapeot.ui.window.MainWindow, batch mode: errors go to stderr) on an X display:
when $DISPLAY is unset this script starts an Xvfb of its own (1280x1024x24, on a free display
number) and stops it at the end. Data: the sample left pial surface
(sample_meshes/fsaverage5_lh_pial.gii, 10,242 vertices) Loop-subdivided K times
(trimesh.remesh.subdivide_loop: 10,242, 40,962, 163,842 vertices for K = 0, 1, 2) against the same
surface under the seeded warp of shapeot.shapes.synthetic.warp_pair(source, seed=2,
resample=False) (as tests/ui/test_app_native.py). Both are written as VTP and opened through
window.open_paths, as File > Open does.

Each size runs in a child process of its own (so that its peak memory is its own): a small OT
solve first (imports, kernels: outside every timing), then the two shapes are opened, then

1. Register is clicked with the preset's defaults (``--preset``, default nonrigid; ``--fast``:
   the rigid preset with prealign.starts=1 and prealign.iterations=3, a quick check only) and the
   run is timed until the task queue is idle (result layers drawn);
2. a result layer ("magnitude", the displacement colour map) is hidden and shown again 5 times;
3. Register is clicked again and, once the progress bar passed 5 %, Cancel is clicked.

Columns (seconds unless said otherwise):

- ``n``: vertices of each shape; ``preset``: the registration preset run.
- ``register_s``: from the click on Register to the queue's ``idle`` signal (layers drawn).
- ``gui_gap_max_s`` / ``gui_gap_p99_s``: the event loop's gaps. A QTimer fires every 10 ms on
  the GUI thread from the click to ``idle``; the largest and the 99th percentile of the intervals
  between its fires (0.010 is a loop that never waits). The largest is usually the building of the
  result layers; ``gui_gap_max_worker_s`` (JSON) is the largest gap while the worker still ran
  (click to its last progress report).
- ``progress_gap_max_s`` / ``progress_gap_p99_s``: intervals between the worker's progress reports
  as the GUI thread received them (the progress bar's updates), from the click to the last
  report; ``n_progress`` reports in all. The JSON names the two messages around the largest gap.
- ``cancel_s``: from the click on Cancel (at > 5 % progress) to the ``cancelled`` signal on the
  GUI thread; ``cancel_worker_s`` (JSON) is the worker's own figure (the signal's argument: from
  Cancel to the worker's stop), ``cancel_at`` the progress fraction when Cancel was clicked.
- ``toggle_s``: median of 10 layer toggles (5 hides, 5 shows), each
  ``window.scene.set_layer_visible(name, v, render=False)`` then ``window.scene.render()``.
- ``layers_s``: from the worker's last progress report to ``idle``: the GUI thread building the
  result layers (and the worker's last steps after "done"); ``on_done_s`` (JSON) is the layer
  building alone (the task's ``on_done``, timed by wrapping it).
- ``max_rss_gb``: the child process's peak resident memory (VmHWM, the process's max RSS; not
  ``ru_maxrss``, which a child started by fork + exec inherits from its parent: see
  benchmarks/common.py); ``ru_maxrss_gb`` (JSON) is resource.getrusage's figure all the same.

Prints a table and writes benchmarks/results/app-responsiveness[-<tag>]-<device>-<date>.json (a
file of the same name is replaced: give a --tag to keep earlier results). Timings are what they
are on the machine that ran them: never turn them into a pass/fail test (issue 24).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_gb, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_meshes" / "fsaverage5_lh_pial.gii"
SIZES = {"10k": 0, "41k": 1, "164k": 2}
COLS = ["n", "preset", "register_s", "gui_gap_max_s", "gui_gap_p99_s", "progress_gap_max_s", "progress_gap_p99_s",
        "n_progress", "cancel_s", "toggle_s", "layers_s", "max_rss_gb"]
ROW_MARK = "APP-RESPONSIVENESS-ROW "
PROBE_MS = 10
TOGGLES = 5


# ---------------------------------------------------------------------------------------- display
class OwnXvfb:
    """An Xvfb of this script's own when $DISPLAY is unset (the display number Xvfb picks itself
    with -displayfd: a free one); stopped (and DISPLAY restored) on exit."""

    def __init__(self):
        self.proc = None

    def __enter__(self):
        if os.environ.get("DISPLAY"):
            return self
        exe = shutil.which("Xvfb")
        if exe is None:
            raise SystemExit("no DISPLAY and no Xvfb: install xvfb (apt-get install xvfb) or set DISPLAY")
        read, write_end = os.pipe()
        self.proc = subprocess.Popen([exe, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24",
                                      "-nolisten", "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(write_end)
        number = b""
        with os.fdopen(read, "rb") as fh:  # Xvfb writes its display number once it accepts clients
            while not number.endswith(b"\n"):
                chunk = fh.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip():
            self.proc.kill()
            raise SystemExit("Xvfb did not start")
        os.environ["DISPLAY"] = f":{int(number)}"
        print(f"started Xvfb on DISPLAY={os.environ['DISPLAY']} (pid {self.proc.pid})", flush=True)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.environ.pop("DISPLAY", None)


# ------------------------------------------------------------------------------------------- data
def write_pair(loop: int, folder: Path) -> tuple[Path, Path, int]:
    """The sample surface Loop-subdivided ``loop`` times and its seeded warp, as VTP files."""
    import trimesh

    import shapeot
    from shapeot.shapes import Shape
    from shapeot.shapes.synthetic import warp_pair

    lh = shapeot.load(SAMPLE)
    pts, faces = np.asarray(lh.points), np.asarray(lh.faces)
    for _ in range(loop):
        pts, faces = trimesh.remesh.subdivide_loop(pts, faces)
    source = Shape(pts, faces, units="mm", name=f"lh x{loop}")
    target = warp_pair(source, seed=2, resample=False).target
    paths = folder / f"lh_loop{loop}.vtp", folder / f"lh_loop{loop}_warped.vtp"
    source.save(paths[0])
    target.replace(name="warped").save(paths[1])
    return paths[0], paths[1], source.n_points


# ------------------------------------------------------------------------------------ child: Qt
def _gaps(stamps: list[float]) -> np.ndarray:
    return np.diff(np.asarray(stamps, dtype=np.float64)) if len(stamps) > 1 else np.zeros(1)


def _p99(values: np.ndarray) -> float:
    return float(np.percentile(values, 99))


class Probe:
    """A QTimer firing every 10 ms on the GUI thread: the times it actually fired."""

    def __init__(self):
        from PyQt5.QtCore import Qt, QTimer

        self.stamps: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(lambda: self.stamps.append(time.perf_counter()))

    def start(self):
        self.stamps = []
        self.timer.start()

    def stop(self):
        self.timer.stop()


def wait_until(predicate, timeout_s: float, what: str) -> None:
    """Run the Qt event loop (a real one: timers fire as in the app) until ``predicate()``."""
    from PyQt5.QtCore import QEventLoop, QTimer

    if predicate():
        return
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(20)
    check.timeout.connect(lambda: predicate() and loop.quit())
    check.start()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(int(timeout_s * 1000))
    loop.exec_()
    check.stop()
    deadline.stop()
    if not predicate():
        raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def child(loop: int, preset: str, fast: bool, timeout_s: float) -> dict:
    """One size, in this process: the row of the table."""
    import torch
    from PyQt5.QtTest import QTest
    from PyQt5.QtWidgets import QApplication
    from shapeot.ui.app import display_available
    from shapeot.ui.settings import Settings
    from shapeot.ui.window import MainWindow

    from shapeot.ot import solve

    if not display_available():
        raise SystemExit(f"no X server at DISPLAY={os.environ.get('DISPLAY')!r}")
    g = torch.Generator().manual_seed(0)
    solve(torch.rand(500, 3, generator=g), torch.rand(400, 3, generator=g), blur=0.05)  # warm-up, untimed
    tmp = Path(tempfile.mkdtemp(prefix="app-responsiveness-"))
    try:
        src, tgt, n = write_pair(loop, tmp)
        app = QApplication.instance() or QApplication([sys.argv[0]])
        window = MainWindow(Settings(tmp / "settings.ini"), batch=True)
        window.resize(1200, 760)
        window.show()
        QTest.qWaitForWindowExposed(window)
        row = {"n": n, "loop": loop, "preset": "rigid" if fast else preset, "fast": fast}
        try:
            _measure(app, window, src, tgt, preset, fast, timeout_s, row)
        finally:
            window.tasks.shutdown(60.0)
            window.close()
            window.deleteLater()
            app.processEvents()
        row["max_rss_gb"] = peak_rss_gb()
        row["ru_maxrss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB; may be the parent's
        return row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _configure(window, preset: str, fast: bool) -> None:
    p = window.params
    p.setCurrentIndex(0)  # the Register tab
    if not fast:
        p.preset.setCurrentText(preset)
        p.advanced.setChecked(False)  # the preset's defaults
        return
    p.preset.setCurrentText("rigid")
    p.advanced.setChecked(True)
    for name, value in {"prealign.starts": 1, "prealign.iterations": 3}.items():
        p.register_form.widget(name).setValue(value)


def _measure(app, window, src: Path, tgt: Path, preset: str, fast: bool, timeout_s: float, row: dict) -> None:
    from PyQt5.QtCore import Qt
    from PyQt5.QtTest import QTest

    state = {"idle": None, "cancelled": None, "cancel_args": None}
    tasks = window.tasks
    tasks.idle.connect(lambda: state.update(idle=time.perf_counter()))
    tasks.cancelled.connect(lambda name, s: state.update(cancelled=time.perf_counter(), cancel_args=(name, s)))
    reports: list[tuple[float, float, str]] = []
    tasks.progress.connect(lambda f, m: reports.append((time.perf_counter(), f, m)))

    state["idle"] = None
    window.open_paths([src, tgt])
    wait_until(lambda: state["idle"] is not None, timeout_s, "the shapes to open")
    if window.errors or len(window.shapes) != 2:
        raise RuntimeError(f"opening failed: {window.errors}")
    _configure(window, preset, fast)
    config = window.params.registration_config()
    row["working_points"] = config.working_points

    # 1. Register: event-loop gaps, progress gaps, the layers' building
    on_done = {}
    registered = window._registered  # the task's on_done, looked up when Register is clicked

    def timed_registered(reg):
        t = time.perf_counter()
        registered(reg)
        on_done["s"] = time.perf_counter() - t

    window._registered = timed_registered
    probe = Probe()
    reports.clear()
    state["idle"] = None
    probe.start()
    t_click = time.perf_counter()
    QTest.mouseClick(window.params.register_button, Qt.LeftButton)
    wait_until(lambda: state["idle"] is not None, timeout_s, "the registration")
    probe.stop()
    del window._registered
    if window.errors or window.result is None:
        raise RuntimeError(f"the registration failed: {window.errors}")
    t_idle = state["idle"]
    t_last = reports[-1][0] if reports else t_click
    ticks = [t for t in probe.stamps if t_click <= t <= t_idle]
    gui = _gaps([t_click, *ticks, t_idle])
    gui_worker = _gaps([t_click, *[t for t in ticks if t <= t_last], t_last])
    prog = _gaps([t_click, *[r[0] for r in reports]])
    worst = int(np.argmax(prog))
    labels = ["click", *[r[2] for r in reports]]
    row.update(register_s=t_idle - t_click, gui_gap_max_s=float(gui.max()), gui_gap_p99_s=_p99(gui),
               gui_gap_max_worker_s=float(gui_worker.max()), gui_gap_p99_worker_s=_p99(gui_worker),
               probe_fires=len(ticks), progress_gap_max_s=float(prog.max()), progress_gap_p99_s=_p99(prog),
               progress_gap_worst_between=[labels[worst], labels[worst + 1]], n_progress=len(reports),
               layers_s=t_idle - t_last, on_done_s=on_done.get("s"),
               registration_total_s=float(window.result[1].timings.get("total", float("nan"))))

    # 2. a result layer hidden and shown again, re-rendered each time
    name = "magnitude" if "magnitude" in window.scene.layers else next(iter(window.scene.layers))
    toggles = []
    for _ in range(TOGGLES):
        for visible in (False, True):
            t = time.perf_counter()
            window.scene.set_layer_visible(name, visible, render=False)
            window.scene.render()
            toggles.append(time.perf_counter() - t)
            app.processEvents()
    row.update(toggle_layer=name, toggle_s=statistics.median(toggles), toggle_all_s=toggles)

    # 3. Cancel at > 5 %
    reports.clear()
    state["idle"] = state["cancelled"] = None
    QTest.mouseClick(window.params.register_button, Qt.LeftButton)
    wait_until(lambda: bool(reports) and max(r[1] for r in reports) > 0.05, timeout_s, "5 % of the progress")
    at = max(r[1] for r in reports)
    t_cancel = time.perf_counter()
    QTest.mouseClick(window.cancel_button, Qt.LeftButton)
    wait_until(lambda: state["cancelled"] is not None or state["idle"] is not None, timeout_s, "the cancel")
    if state["cancelled"] is None:
        raise RuntimeError(f"the run ended without being cancelled: {window.errors}")
    row.update(cancel_s=state["cancelled"] - t_cancel, cancel_worker_s=state["cancel_args"][1], cancel_at=at)


# ------------------------------------------------------------------------------------------ driver
def run_child(loop: int, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(loop), "--preset", args.preset,
           "--timeout", str(args.timeout)]
    if args.fast:
        cmd.append("--fast")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=args.timeout * 3 + 600)
    rows = [line[len(ROW_MARK):] for line in out.stdout.splitlines() if line.startswith(ROW_MARK)]
    if out.returncode != 0 or not rows:
        return {"loop": loop, "preset": "rigid" if args.fast else args.preset,
                "failed": f"child exited with {out.returncode}: {out.stdout[-2000:]}"}
    return json.loads(rows[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--loop", type=int, nargs="+", default=None, choices=[0, 1, 2],
                   help="Loop subdivisions of the sample surface: 0 (10k), 1 (41k), 2 (164k); default all")
    p.add_argument("--sizes", nargs="+", default=None, choices=list(SIZES), help="the same as --loop, by size")
    p.add_argument("--preset", default="nonrigid", help="registration preset, run with its defaults")
    p.add_argument("--fast", action="store_true",
                   help="a quick check: the rigid preset with prealign.starts=1, prealign.iterations=3")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the app (default: torch's own)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for each step of a size")
    p.add_argument("--tag", default="", help="inserted in the output's name: app-responsiveness-<tag>-...")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child is not None:
        row = child(args.child, args.preset, args.fast, args.timeout)
        print(ROW_MARK + json.dumps(row), flush=True)
        return 0
    loops = args.loop if args.loop is not None else [SIZES[s] for s in args.sizes] if args.sizes else [0, 1, 2]
    info = machine()
    info.update(preset="rigid (prealign.starts=1, prealign.iterations=3)" if args.fast else f"{args.preset} (defaults)",
                probe_ms=PROBE_MS, toggles=2 * TOGGLES, sample=SAMPLE.name,
                command=" ".join(["benchmarks/app_responsiveness.py", *(argv if argv is not None else sys.argv[1:])]))
    if args.threads:
        info["torch_threads"] = args.threads
    rows = []
    with OwnXvfb():
        info["display"] = os.environ.get("DISPLAY")
        for loop in loops:
            row = run_child(loop, args)
            rows.append(row)
            print(table([row], COLS + (["failed"] if "failed" in row else [])), flush=True)
    print()
    print(table(rows, COLS + (["failed"] if any("failed" in r for r in rows) else [])))
    path = write(f"app-responsiveness-{args.tag}" if args.tag else "app-responsiveness", info, rows)
    print(f"wrote {path}")
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
