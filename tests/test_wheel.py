"""The built wheel is complete: it carries the sample brains, the app and the FreeSurfer colour
table, and `shapeot demo` runs from it outside any checkout (issue 19: it used to fail there)."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the wheel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PIP_NO_INPUT": "1"})
    assert build.returncode == 0, build.stderr[-2000:]
    (whl,) = out.glob("shapeot-*.whl")
    return whl


def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ("shapeot/data/fsaverage5_lh_pial.gii", "shapeot/data/fsaverage5_rh_pial.gii",
                 "shapeot/shapes/data/FreeSurferColorLUT.txt", "shapeot/ui/window.py", "shapeot/samples.py"):
        assert must in names, must
    assert not any(n.startswith(("ui/", "tests/", "sample_meshes/")) for n in names)
    # the shipped brains are the checkout's, byte for byte (not links, not empty)
    data = zipfile.ZipFile(wheel).read("shapeot/data/fsaverage5_lh_pial.gii")
    assert data == (ROOT / "sample_meshes" / "fsaverage5_lh_pial.gii").read_bytes()


def test_demo_runs_from_the_installed_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import shapeot; print(shapeot.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr  # not the checkout
    run = subprocess.run([sys.executable, "-m", "shapeot", "demo", "--no-register", "-o", "out"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    csv = work / "out" / "lh_to_mirrored_rh_correspondences.csv"
    assert len(csv.read_text().splitlines()) == 10242 + 1  # one correspondence per source vertex
