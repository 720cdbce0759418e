"""Persistent settings of the desktop app (QSettings): recent files, last folders, parameters.

By default they live where Qt keeps per-user settings (``~/.config/shapeot/shapeot-gui.conf`` on
Linux). ``SHAPEOT_GUI_SETTINGS=/path/file.ini`` (or ``shapeot-gui --settings FILE``) uses that
INI file instead: tests and scripted screenshots never touch the user's settings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QByteArray, QSettings

__all__ = ["Settings", "MAX_RECENT", "ENV_VAR"]

MAX_RECENT = 10
ENV_VAR = "SHAPEOT_GUI_SETTINGS"


class Settings:
    """Typed access to the app's QSettings.

    Parameters
    ----------
    path : str or PathLike, optional
        An INI file to use; default: ``$SHAPEOT_GUI_SETTINGS`` if set, else Qt's per-user store.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        path = path if path is not None else os.environ.get(ENV_VAR) or None
        if path is not None:
            self._qs = QSettings(os.fspath(path), QSettings.IniFormat)
        else:
            self._qs = QSettings("shapeot", "shapeot-gui")

    @property
    def file_name(self) -> str:
        """Where the settings are stored."""
        return self._qs.fileName()

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._qs.sync()

    # ------------------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        """Files opened recently, most recent first (at most :data:`MAX_RECENT`)."""
        value = self._qs.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns a lone string for a 1-element list
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent_file(self, path: str | os.PathLike) -> list[str]:
        """Put ``path`` (made absolute) at the head of the recent files; returns the new list."""
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self._qs.setValue("recent_files", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        """Forget the recent files."""
        self._qs.setValue("recent_files", [])

    # ------------------------------------------------------------------------------ folders
    def last_folder(self, kind: str) -> str:
        """The folder last used for ``kind`` ("open", "export", "template", "screenshot"), or
        the current directory."""
        value = self._qs.value(f"folders/{kind}", "")
        return str(value) if value and Path(str(value)).is_dir() else os.getcwd()

    def set_last_folder(self, kind: str, path: str | os.PathLike) -> None:
        """Remember the folder of ``path`` (or ``path`` itself if it is a folder) for ``kind``."""
        p = Path(path)
        self._qs.setValue(f"folders/{kind}", str(p if p.is_dir() else p.parent))

    # ------------------------------------------------------------------------------ parameters
    def parameters(self, group: str) -> dict[str, Any]:
        """Saved parameter values of a panel ("register", "match", "template"), as plain data."""
        raw = self._qs.value(f"parameters/{group}", "")
        try:
            value = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def set_parameters(self, group: str, values: dict[str, Any]) -> None:
        """Save the parameter values of a panel (JSON-serialisable values)."""
        self._qs.setValue(f"parameters/{group}", json.dumps(values))

    # ------------------------------------------------------------------------------ window
    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        """(geometry, dock state) saved by :meth:`set_window_state`."""
        g, s = self._qs.value("window/geometry"), self._qs.value("window/state")
        return (g if isinstance(g, QByteArray) else None, s if isinstance(s, QByteArray) else None)

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        """Save the main window's geometry and the layout of its docks."""
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)
