"""Draw the module and extension icon, ``plugin/ShapeOT/Resources/Icons/ShapeOT.png``.

128 x 128 RGBA: a blue source outline and an orange target outline (two rounded shapes, like
two surfaces in section) with optimal-transport lines joining matched points. Pure numpy
(4x supersampling for anti-aliasing), written with matplotlib's PNG writer.

    python plugin/tools/make_icon.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 128
SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parents[1] / "ShapeOT" / "Resources" / "Icons" / "ShapeOT.png"

BLUE = np.array([0.22, 0.45, 0.90])
ORANGE = np.array([0.98, 0.60, 0.15])
GREY = np.array([0.35, 0.35, 0.40])


def outline(t: np.ndarray, centre, radius, wobble, phase) -> np.ndarray:
    """(len(t), 2) points of a smooth closed curve r(t) = radius (1 + wobble cos(3 t + phase))."""
    r = radius * (1.0 + wobble * np.cos(3.0 * t + phase) + 0.5 * wobble * np.sin(5.0 * t))
    return np.stack([centre[0] + r * np.cos(t), centre[1] + 0.85 * r * np.sin(t)], axis=1)


def stroke(canvas: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray, width: float, colour) -> None:
    """Paint the segment a-b (supersampled pixel units) with a soft-edged pen."""
    n = SIZE * SS
    lo = np.floor(np.minimum(a, b) - width - 1).astype(int).clip(0, n - 1)
    hi = np.ceil(np.maximum(a, b) + width + 1).astype(int).clip(0, n - 1)
    ys, xs = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
    p = np.stack([xs, ys], axis=-1).astype(float)
    d = b - a
    t = np.clip(((p - a) @ d) / max(d @ d, 1e-9), 0.0, 1.0)
    dist = np.linalg.norm(p - (a + t[..., None] * d), axis=-1)
    cover = np.clip(width / 2.0 + 0.5 - dist, 0.0, 1.0)
    sl = (slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    canvas[sl] = canvas[sl] * (1.0 - cover[..., None]) + cover[..., None] * colour
    alpha[sl] = np.maximum(alpha[sl], cover)


def draw() -> np.ndarray:
    n = SIZE * SS
    canvas = np.ones((n, n, 3))
    alpha = np.zeros((n, n))
    t = np.linspace(0.0, 2.0 * np.pi, 400)
    src = outline(t, (0.36 * n, 0.42 * n), 0.25 * n, 0.10, 0.3)
    tgt = outline(t, (0.64 * n, 0.58 * n), 0.26 * n, 0.14, 1.6)
    for k in range(0, 400, 25):  # transport lines between matched points
        stroke(canvas, alpha, src[k], tgt[(k + 12) % 400], 1.2 * SS, GREY)
    for curve, colour in ((src, BLUE), (tgt, ORANGE)):
        for a, b in zip(curve[:-1], curve[1:]):
            stroke(canvas, alpha, a, b, 3.2 * SS, colour)
    for k in range(0, 400, 25):
        for p, colour in ((src[k], BLUE), (tgt[(k + 12) % 400], ORANGE)):
            stroke(canvas, alpha, p, p + 0.01, 7.0 * SS, colour)
    rgba = np.concatenate([canvas, alpha[..., None]], axis=-1)
    return rgba.reshape(SIZE, SS, SIZE, SS, 4).mean(axis=(1, 3))


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(OUT, np.clip(draw(), 0.0, 1.0))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
