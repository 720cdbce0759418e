"""Off-screen renderings of results, without a display (``./demo.sh`` on a headless machine).

    python -m shapeot.ui.render [-o OUTDIR] [--no-register]

renders what ``shapeot demo -o OUTDIR`` wrote (the left pial surface registered onto the mirrored
right one) into ``OUTDIR/lh_to_mirrored_rh.png``: before (source and target) beside after (the
warped source coloured by its displacement magnitude, over the faded target), with a pyvista
``Plotter(off_screen=True)``; with ``--no-register``, the OT correspondence lines instead.
The same layers as the desktop app (:mod:`shapeot.ui.layers`), no Qt.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["render_registration", "render_correspondences", "render_demo", "main"]

WINDOW_SIZE = (1600, 800)


def _headless_backend() -> None:
    """Without an X display, pick VTK's EGL (or OSMesa) window directly: VTK would otherwise try
    X first and print a warning before falling back."""
    if os.environ.get("DISPLAY") or os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") or sys.platform != "linux":
        return
    import ctypes.util

    os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = (
        "vtkEGLRenderWindow" if ctypes.util.find_library("EGL") else "vtkOSOpenGLRenderWindow")


def _plotter(shape: tuple[int, int] = (1, 2)):
    _headless_backend()
    import pyvista as pv

    from .layers import BACKGROUND

    p = pv.Plotter(off_screen=True, window_size=WINDOW_SIZE, shape=shape, border=False)
    for i in range(shape[1]):
        p.subplot(0, i)
        p.set_background(BACKGROUND[0], top=BACKGROUND[1])
    return p


def _frame(p, title: str) -> None:
    p.add_text(title, font_size=12, color="white")
    p.view_yz(negative=True, render=False)
    p.reset_camera(render=False)


def _save(p, png: Path) -> Path:
    from .export import atomic_path

    png = Path(png)
    with atomic_path(png) as tmp:
        p.screenshot(str(tmp))
    p.close()
    return png


def render_registration(warped, target, png: str | os.PathLike, *, displacement: np.ndarray | None = None) -> Path:
    """Before / after picture of a registration, written atomically as PNG.

    Parameters
    ----------
    warped : shapeot.Shape
        The warped source (source faces); its ``point_data["displacement"]`` (N, 3, mm) gives
        the source back (warped - displacement) unless ``displacement`` is given.
    target : shapeot.Shape
    png : path
    """
    from .layers import MAGNITUDE, TEMPLATE_COLOUR, displacement_magnitude
    from .model import PALETTE

    d = np.asarray(warped.point_data["displacement"] if displacement is None else displacement)
    source = warped.with_points(np.asarray(warped.points) - d)
    p = _plotter()
    p.subplot(0, 0)
    p.add_mesh(source.to_pyvista(), color=TEMPLATE_COLOUR, smooth_shading=True, scalars=None)
    p.add_mesh(target.to_pyvista(), color=PALETTE[1], opacity=0.5, smooth_shading=True, scalars=None)
    _frame(p, "before: source (orange) and target (blue)")
    p.subplot(0, 1)
    mesh = warped.to_pyvista()
    mesh.clear_data()
    mesh.point_data[MAGNITUDE] = displacement_magnitude(d)
    p.add_mesh(mesh, scalars=MAGNITUDE, cmap="viridis", smooth_shading=True,
               scalar_bar_args=dict(title="displacement (mm)", color="white", vertical=True, position_x=0.82,
                                    position_y=0.1, height=0.5, width=0.05))
    p.add_mesh(target.to_pyvista(), color=PALETTE[1], opacity=0.2, smooth_shading=True, scalars=None)
    _frame(p, "after: warped source, displacement magnitude")
    p.link_views()
    return _save(p, png)


def render_correspondences(source, target, target_points: np.ndarray, mass: np.ndarray,
                           png: str | os.PathLike) -> Path:
    """OT correspondence lines (a subsample, coloured by transport mass) between two shapes, PNG."""
    from .layers import MASS, TEMPLATE_COLOUR, correspondence_lines
    from .model import PALETTE

    p = _plotter((1, 1))
    p.add_mesh(source.to_pyvista(), color=TEMPLATE_COLOUR, opacity=0.6, smooth_shading=True, scalars=None)
    p.add_mesh(target.to_pyvista(), color=PALETTE[1], opacity=0.3, smooth_shading=True, scalars=None)
    p.add_mesh(correspondence_lines(source.points, target_points, mass), scalars=MASS, cmap="plasma", line_width=2,
               scalar_bar_args=dict(title=MASS, color="white"))
    _frame(p, "OT correspondences")
    return _save(p, png)


def render_demo(outdir: str | os.PathLike = "out/demo", *, registered: bool = True) -> Path:
    """Render the results of ``shapeot demo -o OUTDIR`` into ``OUTDIR/lh_to_mirrored_rh.png``."""
    import shapeot

    from .tasks import mirror_x

    outdir = Path(outdir)
    from shapeot.samples import sample_path

    target = mirror_x(shapeot.load(sample_path("fsaverage5_rh_pial.gii")))
    png = outdir / "lh_to_mirrored_rh.png"
    warped_path = outdir / "lh_to_mirrored_rh_warped.vtp"
    if registered:
        if not warped_path.exists():
            raise FileNotFoundError(f"{warped_path}: not found; run `python -m shapeot demo -o {outdir}` first")
        return render_registration(shapeot.load(warped_path), target, png)
    csv = outdir / "lh_to_mirrored_rh_correspondences.csv"
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    source = shapeot.load(sample_path("fsaverage5_lh_pial.gii"))
    return render_correspondences(source, target, rows[:, 1:4], rows[:, 5], png)


def main(argv: list[str] | None = None) -> int:
    """``python -m shapeot.ui.render``; unknown options (those of ``shapeot demo``) are ignored."""
    p = argparse.ArgumentParser(prog="python -m shapeot.ui.render", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="out/demo", help="the folder `shapeot demo` wrote (default out/demo)")
    p.add_argument("--no-register", action="store_true", help="render the OT correspondences instead")
    args, _ = p.parse_known_args(argv)
    try:
        png = render_demo(args.output, registered=not args.no_register)
    except (OSError, ValueError) as exc:
        print(f"shapeot render: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote an off-screen rendering of the result to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
