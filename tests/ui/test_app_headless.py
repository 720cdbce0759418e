"""Without a display: ./demo.sh's headless rendering (pyvista off_screen, PNG) and the GUI's refusal."""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")


@pytest.mark.skipif(sys.platform == "linux"
                    and not (ctypes.util.find_library("EGL") or ctypes.util.find_library("OSMesa")),
                    reason="off-screen rendering without a display needs libEGL or libOSMesa "
                           "(apt-get install libegl1 libosmesa6; scripts/bootstrap.sh does it)")
def test_headless_rendering_of_the_demo_results(quick_registration, tmp_path):
    # what `shapeot demo -o DIR` leaves: the warped mesh with its displacement point data
    quick_registration.warped.save(tmp_path / "lh_to_mirrored_rh_warped.vtp")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "shapeot.ui.render", "-o", str(tmp_path), "--scaling", "0.5"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "lh_to_mirrored_rh.png"
    assert f"to {png}" in proc.stdout
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape == (800, 1600, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # the GUI says why it cannot start instead of letting Qt abort
    proc = subprocess.run([sys.executable, "-m", "shapeot.ui", "--samples"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 2 and "no display" in proc.stderr
