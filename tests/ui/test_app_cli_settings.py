"""The command line (``shapeot-gui A B --register --screenshot out.png --exit``) and the settings."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pyvistaqt", reason="the desktop app needs the gui extra: pip install 'shapeot[gui]'")

from PyQt5.QtGui import QImage


def test_command_line_registers_saves_a_screenshot_and_exits(display, brain_files, tmp_path, gui):
    png = tmp_path / "shot.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SHAPEOT_GUI_SETTINGS": str(tmp_path / "s.ini")}
    proc = subprocess.run([sys.executable, "-m", "shapeot.ui", *map(str, brain_files), "--register", "--preset",
                           "rigid", "--size", "1000x700", "--screenshot", str(png), "--exit"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr  # no crash at exit either (a segfault gives -11)
    assert f"wrote {png}" in proc.stdout
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1000, 700)
    colours = np.unique(gui.image_array(image).reshape(-1, 3), axis=0)
    assert len(colours) > 1000


def test_command_line_reports_a_bad_file_and_fails(display, tmp_path):
    env = {**os.environ, "SHAPEOT_GUI_SETTINGS": str(tmp_path / "s.ini")}
    proc = subprocess.run([sys.executable, "-m", "shapeot.ui", str(tmp_path / "nothing.vtp"), "--exit"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "nothing.vtp" in proc.stderr and "no such file" in proc.stderr


def test_settings_keep_recent_files_folders_and_parameters(make_window, qtbot, brain_files, gui, settings_file):
    first = make_window()
    gui.run_until_idle(qtbot, first, lambda: first.open_paths(brain_files))
    first.params.preset.setCurrentText("affine")
    first.params.advanced.setChecked(True)
    first.params.register_form.widget("prealign.starts").setValue(3)
    first.params.match_form.widget("blur").setText("2.5")
    first.close()

    second = make_window()
    assert second.settings.recent_files()[:2] == [str(p.resolve()) for p in reversed(brain_files)]
    assert second.settings.last_folder("open") == str(brain_files[0].parent)
    assert second.params.preset.currentText() == "affine" and second.params.advanced.isChecked()
    assert second.params.registration_config().prealign.starts == 3
    assert second.params.match_options().blur == 2.5
    second.recent_menu.aboutToShow.emit()
    titles = [a.text() for a in second.recent_menu.actions()]
    assert str(brain_files[0].resolve()) in titles
    # a recent file reopens through the same path as File > Open
    action = next(a for a in second.recent_menu.actions() if a.text() == str(brain_files[0].resolve()))
    gui.run_until_idle(qtbot, second, action.trigger)
    assert [item.name for item in second.shapes] == [brain_files[0].name]
    assert settings_file.exists()


def test_scripted_runs_neither_use_nor_rewrite_the_users_settings(display, brain_files, tmp_path):
    """--exit without --settings: the user's saved preset, parameters and recent files are not
    read, and their file is left byte for byte as it was (issue 19)."""
    from PyQt5.QtCore import QSettings

    config = tmp_path / "config"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CONFIG_HOME": str(config)}
    env.pop("SHAPEOT_GUI_SETTINGS", None)
    user = config / "shapeot" / "shapeot-gui.conf"
    user.parent.mkdir(parents=True)
    # the user's own settings, as the app writes them: a recent file that an interactive run
    # would push down, a saved preset and a window layout that closing the window would rewrite
    qs = QSettings(str(user), QSettings.IniFormat)
    qs.setValue("recent_files", ["/data/mine.vtp"])
    qs.setValue("parameters/panels", '{"preset": "affine"}')
    qs.sync()
    before = user.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "shapeot.ui", *map(str, brain_files), "--exit"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert user.read_bytes() == before
    assert sorted((config / "shapeot").rglob("*")) == [user]
    # the same run with the user's store (no --exit) does write it: the check above can fail
    from shapeot.ui.settings import Settings

    assert Settings(user).recent_files() == ["/data/mine.vtp"]
