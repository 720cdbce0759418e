"""The main window: the 3D view, the panels, the menus, and the wiring of actions to tasks.

Every action is three steps: read the current selection and parameters (GUI thread), run the
library's public function in the worker thread (:mod:`shapeot.ui.tasks` through
:class:`~shapeot.ui.worker.TaskQueue`), and show the result (GUI thread: layers, table, plot).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QActionGroup,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QWidget,
)

from . import dialogs, export, tasks
from .layers import BACKGROUND, OVERLAY_LAYERS
from .metrics_table import MetricsTable
from .model import ShapeItem, ShapeList
from .params import ParamsPanel
from .plots import ConvergencePlot
from .results_panel import ResultsPanel
from .scene import Scene
from .settings import Settings
from .shapes_panel import ShapesPanel
from .worker import Task, TaskQueue

__all__ = ["MainWindow", "OPEN_FILTER", "OVERLAY_FILTER"]

OPEN_FILTER = ("Shapes (*.vtk *.vtp *.stl *.ply *.obj *.off *.gii *.gii.gz lh.* rh.* *.nii *.nii.gz *.mgz *.mgh "
               "*.nrrd *.seg.nrrd *.nhdr *.mha *.mhd);;Meshes (*.vtk *.vtp *.stl *.ply *.obj *.off *.gii *.gii.gz "
               "lh.* rh.*);;Label maps (*.nii *.nii.gz *.mgz *.mgh *.nrrd *.seg.nrrd *.nhdr *.mha *.mhd);;"
               "All files (*)")
OVERLAY_FILTER = ("Overlays (*.thickness *.curv *.sulc *.area *.volume *.annot *.label *.mgh *.mgz *.gii *.gii.gz "
                  "lh.* rh.*);;FreeSurfer morph files (*.thickness *.curv *.sulc *.area *.volume lh.* rh.*);;"
                  "Parcellations (*.annot *.label *.label.gii);;MGH (*.mgh *.mgz);;GIfTI (*.gii *.gii.gz);;"
                  "All files (*)")
MESH_SAVE_FILTER = "VTK PolyData (*.vtp);;VTK legacy (*.vtk);;PLY (*.ply);;STL (*.stl);;OBJ (*.obj);;GIfTI (*.gii)"


class MainWindow(QMainWindow):
    """shapeot's desktop application window.

    Parameters
    ----------
    settings : Settings, optional
        Where recent files, folders and parameters persist (default: the user's QSettings, or
        ``$SHAPEOT_GUI_SETTINGS``).
    batch : bool, default: False
        Errors go to stderr instead of a dialog (``shapeot-gui ... --exit``).

    Attributes
    ----------
    shapes : ShapeList
        The opened shapes (the view-model every panel observes).
    tasks : TaskQueue
        The worker: its ``finished``, ``failed``, ``cancelled`` and ``idle`` signals tell when
        an action is over.
    scene : Scene
        The 3D view's shapes and result layers.
    result : tuple (kind, object) or None
        The last result: ("registration", Registration), ("match", MatchResult) or
        ("template", TemplateResult).
    errors : list of (title, message)
        Every error shown, in order.
    label_chooser : callable(parent, path, labels) -> label or None
        Asks which label of a scan to extract (replaceable, e.g. in tests).
    """

    error_shown = pyqtSignal(str, str)

    def __init__(self, settings: Settings | None = None, *, batch: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from pyvistaqt import QtInteractor

        self.settings = settings if settings is not None else Settings()
        self.batch = batch
        self.errors: list[tuple[str, str]] = []
        self.result: tuple[str, Any] | None = None
        self.label_chooser = dialogs.choose_label
        self.setWindowTitle("shapeot")
        self.setAcceptDrops(True)
        self.resize(1440, 900)

        self.shapes = ShapeList()
        self.tasks = TaskQueue(self)
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=4)
        self.plotter.setObjectName("view")
        self.plotter.set_background(BACKGROUND[0], top=BACKGROUND[1])
        self.plotter.add_axes(color="white")
        self.setCentralWidget(self.plotter)
        self.scene = Scene(self.plotter, self.shapes)

        self.shapes_panel = ShapesPanel(self.shapes, mirror=self.mirror_item, load_overlay=self.overlay_dialog)
        self.params = ParamsPanel()
        self.results_panel = ResultsPanel(self.scene)
        self.metrics_table = MetricsTable()
        self.convergence = ConvergencePlot()
        self._docks: dict[str, QDockWidget] = {}
        self._dock("shapes", "Shapes", self.shapes_panel, Qt.LeftDockWidgetArea)
        self._dock("parameters", "Parameters", self.params, Qt.LeftDockWidgetArea)
        self._dock("layers", "Result layers", self.results_panel, Qt.RightDockWidgetArea)
        self._dock("metrics", "Metrics", self.metrics_table, Qt.RightDockWidgetArea)
        self._dock("convergence", "Convergence", self.convergence, Qt.RightDockWidgetArea)
        self.resizeDocks([self._docks["shapes"], self._docks["layers"]], [330, 340], Qt.Horizontal)

        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(320)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p %")
        self.status = QLabel("Open two shapes (File ▸ Open, or drop files here), then Register.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel_button")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        bar = self.statusBar()
        bar.addWidget(self.status, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

        self._build_actions()
        self.params.register_requested.connect(self.register)
        self.params.match_requested.connect(self.match)
        self.params.template_requested.connect(lambda: self.build_template())
        self.tasks.started.connect(self._task_started)
        self.tasks.progress.connect(self._task_progress)
        self.tasks.finished.connect(self._task_finished)
        self.tasks.failed.connect(self._task_failed)
        self.tasks.cancelled.connect(self._task_cancelled)
        self.tasks.idle.connect(self._update_actions)
        self.shapes.roles_changed.connect(self._update_actions)
        self.shapes_panel.selection_changed.connect(lambda item: self._update_actions())
        self.scene.layers_changed.connect(self._update_actions)
        self.params.restore(self.settings.parameters("panels"))
        geometry, state = self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._update_actions()

    # ------------------------------------------------------------------------------------ layout
    def _dock(self, key: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self._docks[key] = dock
        return dock

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip or text)
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_actions(self) -> None:
        a = self.actions_by_name = {}
        a["open"] = self._action("&Open…", self.open_dialog, QKeySequence.Open, "Open meshes or segmented scans")
        a["samples"] = self._action("Open the sample &brains", self.open_samples, None,
                                    "The fsaverage5 left pial surface and the mirrored right one")
        a["overlay"] = self._action("Load &overlay…", lambda: self.overlay_dialog(), "Ctrl+L",
                                    "Colour the selected shape by per-vertex values: lh.thickness, lh.curv, "
                                    "lh.sulc, .annot, .label, .mgh, GIfTI")
        a["overlay_result"] = self._action("Load overlay onto the res&ult…", lambda: self.overlay_dialog(
            self._overlay_layer()), None, "Colour the warped source (after Register) or the template by an overlay")
        a["register"] = self._action("&Register", self.register, "Ctrl+R", "Register the source onto the target")
        a["match"] = self._action("&Match", self.match, "Ctrl+M", "OT correspondences from the source to the target")
        a["template"] = self._action("Build &template from folder…", lambda: self.build_template(), "Ctrl+T",
                                     "Population template of the shapes of a folder")
        a["cancel"] = self._action("&Cancel", self.cancel, "Esc", "Stop the running computation")
        a["export_warped"] = self._action("&Warped mesh…", lambda: self._export_dialog("warped"))
        a["export_displacement"] = self._action("&Displacement field…", lambda: self._export_dialog("displacement"))
        a["export_correspondences"] = self._action("&Correspondences (CSV)…",
                                                   lambda: self._export_dialog("correspondences"))
        a["export_registration"] = self._action("&All registration files…", lambda: self._export_dialog("registration"))
        a["export_template"] = self._action("&Template and modes…", lambda: self._export_dialog("template"))
        a["export_overlay"] = self._action("&Overlay on the target or template…", self._export_overlay_dialog, None,
                                           "After Register: a source overlay carried onto the target's vertices; "
                                           "after Build template: the subjects' overlay averaged (mean and SD)")
        a["screenshot"] = self._action("Save &screenshot of the 3D view…", lambda: self._screenshot_dialog(False),
                                       "Ctrl+P")
        a["screenshot_window"] = self._action("Save screenshot of the &window…", lambda: self._screenshot_dialog(True))
        a["reset_camera"] = self._action("&Reset camera", self._reset_camera, "Ctrl+0")
        a["quit"] = self._action("&Quit", self.close, QKeySequence.Quit)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(a["open"])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(a["samples"])
        file_menu.addSeparator()
        file_menu.addAction(a["overlay"])
        file_menu.addAction(a["overlay_result"])
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export")
        for key in ("export_warped", "export_displacement", "export_correspondences", "export_registration",
                    "export_template", "export_overlay"):
            export_menu.addAction(a[key])
        file_menu.addAction(a["screenshot"])
        file_menu.addAction(a["screenshot_window"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        compute = menu.addMenu("&Compute")
        for key in ("register", "match", "template", "cancel"):
            compute.addAction(a[key])
        view = menu.addMenu("&View")
        view.addAction(a["reset_camera"])
        self.colour_menu = view.addMenu("&Colour by")
        self.colour_menu.setObjectName("colour_menu")
        self.colour_menu.aboutToShow.connect(self._fill_colour_menu)
        view.addSeparator()
        for dock in self._docks.values():
            view.addAction(dock.toggleViewAction())
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("toolbar")
        for key in ("open", "register", "match", "template", "cancel", "screenshot"):
            toolbar.addAction(a[key])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_paths([p]))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.settings.clear_recent_files)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _fill_colour_menu(self) -> None:
        """One exclusive group per shape or layer with overlays: its plain colour, then each overlay."""
        menu = self.colour_menu
        menu.clear()
        targets = [t for t in self.scene.overlay_targets() if self.scene.overlays(t)]
        if not targets:
            menu.addAction("(no overlay loaded: File ▸ Load overlay…)").setEnabled(False)
            return
        for target in targets:
            menu.addSection(self.scene.target_name(target))
            group = QActionGroup(menu)
            for name in [None, *self.scene.overlays(target)]:
                action = menu.addAction("plain colour" if name is None else name)
                action.setCheckable(True)
                action.setChecked(self.scene.colour_by(target) == name)
                group.addAction(action)
                action.triggered.connect(lambda checked=False, t=target, n=name: self.scene.set_colour_by(t, n))

    def _update_actions(self) -> None:
        busy = self.tasks.busy
        ready = self.shapes.source is not None and self.shapes.target is not None and not busy
        a = self.actions_by_name
        a["register"].setEnabled(ready)
        a["match"].setEnabled(ready)
        a["template"].setEnabled(not busy and self.params.template_form is not None)
        a["cancel"].setEnabled(busy)
        self.cancel_button.setEnabled(busy)
        self.params.register_button.setEnabled(ready)
        self.params.match_button.setEnabled(ready)
        self.params.template_button.setEnabled(not busy and self.params.template_form is not None)
        kind = self.result[0] if self.result else None
        for key in ("export_warped", "export_registration"):
            a[key].setEnabled(kind == "registration")
        a["export_displacement"].setEnabled(kind in ("registration", "match"))
        a["export_correspondences"].setEnabled(kind in ("registration", "match"))
        a["export_template"].setEnabled(kind == "template")
        a["export_overlay"].setEnabled(kind in ("registration", "template") and not busy)
        a["overlay"].setEnabled(self.shapes_panel.selected() is not None)
        a["overlay_result"].setEnabled(self._overlay_layer() is not None)

    # ------------------------------------------------------------------------------------ errors
    def show_error(self, title: str, message: str, details: str = "") -> None:
        """Tell the user (a non-blocking dialog, or stderr in batch mode); the app keeps running."""
        self.errors.append((title, message))
        self.status.setText(f"{title}: {message.splitlines()[0] if message else ''}")
        if self.batch:
            print(f"shapeot-gui: error: {title}: {message}", file=sys.stderr)
        else:
            dialogs.show_error(self, title, message, details)
        self.error_shown.emit(title, message)

    def _guard(self, title: str, fn, *args, **kwargs):
        """Run ``fn``; show any error in a dialog instead of raising (for menu actions)."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            from .worker import describe_error

            self.show_error(title, *describe_error(exc))
            return None

    # ------------------------------------------------------------------------------------ tasks
    def _task_started(self, name: str) -> None:
        self.progress.setValue(0)
        self.status.setText(f"{name}…")
        self._update_actions()

    def _task_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * min(max(fraction, 0.0), 1.0))))
        self.status.setText(message)

    def _task_finished(self, name: str, result: Any) -> None:
        self.progress.setValue(1000)
        self._update_actions()

    def _task_failed(self, name: str, message: str, details: str) -> None:
        self.progress.setValue(0)
        self.show_error(f"{name.capitalize()} failed", message, details)
        self._update_actions()

    def _task_cancelled(self, name: str, seconds: float) -> None:
        self.progress.setValue(0)
        self.status.setText(f"{name.capitalize()} cancelled ({seconds:.2f} s after Cancel); nothing was changed.")
        self._update_actions()

    def cancel(self) -> None:
        """Stop the running computation (at its next progress report) and drop queued ones."""
        if self.tasks.busy:
            self.status.setText("Cancelling… (the step that is running finishes first)")
            self.tasks.cancel()

    # ------------------------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        """File ▸ Open: choose files, then :meth:`open_paths`."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open shapes", self.settings.last_folder("open"), OPEN_FILTER)
        if paths:
            self.open_paths(paths)

    def open_paths(self, paths, *, label: int | str | None = None) -> None:
        """Open files (and every file directly inside a folder): the path of the menu, of
        drag-and-drop and of the command line.

        Meshes are read in the worker thread; for a segmented scan the labels are listed first,
        then :attr:`label_chooser` asks which one to extract (unless ``label`` is given).
        Failures (missing file, unsupported format, missing label) show an error dialog.
        """
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                inner = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
                self.open_paths([p for p in inner if p.suffix.lower() not in (".json", ".npy", ".csv", ".txt")],
                                label=label)
                continue
            if path.exists():
                self.settings.add_recent_file(path)
                self.settings.set_last_folder("open", path)
            if tasks.is_label_map(path) and label is None:
                self.tasks.submit(Task("list labels",
                                       prepare=lambda p=path: (lambda progress: tasks.scan_labels(p, progress)),
                                       on_done=lambda labels, p=path: self._labels_listed(p, labels)))
            else:
                self.tasks.submit(Task("open", prepare=lambda p=path: (
                    lambda progress: tasks.load_shape(p, label if tasks.is_label_map(p) else None, progress)),
                    on_done=self._loaded))

    def _labels_listed(self, path: Path, labels: list) -> None:
        value = self.label_chooser(self, str(path), labels)
        if value is None:
            self.status.setText(f"{path.name}: no label chosen; nothing opened")
            return
        self.tasks.submit(Task("open", prepare=lambda: (lambda progress: tasks.load_shape(path, value, progress)),
                               on_done=self._loaded), first=True)

    def _loaded(self, shape) -> ShapeItem:
        item = self.shapes.add(shape)
        self.status.setText(f"Opened {shape.name}: {shape.n_points} vertices, "
                            f"{0 if shape.faces is None else len(shape.faces)} triangles")
        return item

    def open_samples(self) -> None:
        """Open the sample brains: the fsaverage5 left pial surface and the right one mirrored
        to the left (as ``shapeot demo``)."""
        from shapeot.samples import sample_path

        lh, rh = sample_path("fsaverage5_lh_pial.gii"), sample_path("fsaverage5_rh_pial.gii")
        self.open_paths([lh])
        self.tasks.submit(Task("open", prepare=lambda: (lambda progress: tasks.mirror_x(
            tasks.load_shape(rh, None, progress))), on_done=self._loaded))

    # overlays ---------------------------------------------------------------------------------------
    def _overlay_layer(self) -> str | None:
        """The result layer an overlay can colour now (the warped source, or the template)."""
        return next((name for name in OVERLAY_LAYERS if name in self.scene.layers), None)

    def overlay_dialog(self, item: ShapeItem | str | None = None) -> None:
        """File ▸ Load overlay: choose a file, then :meth:`open_overlay` onto ``item`` (default:
        the shape selected in the Shapes panel)."""
        target = item if item is not None else self.shapes_panel.selected()
        if target is None:
            self.status.setText("Select a shape in the Shapes panel first: an overlay colours one shape.")
            return
        name = self._guard("Load overlay failed", self.scene.target_name, target)
        if name is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Load an overlay onto {name}",
                                              self.settings.last_folder("overlay"), OVERLAY_FILTER)
        if path:
            self.open_overlay(path, target)

    def open_overlay(self, path: str | os.PathLike, item: ShapeItem | str | None = None) -> None:
        """Read per-vertex values (FreeSurfer morph file such as lh.thickness, ``.annot``,
        ``.label``, ``.mgh``/``.mgz``, GIfTI) in the worker thread and colour a shape by them.

        Parameters
        ----------
        path : str or PathLike
        item : ShapeItem or str, optional
            The shape, or a result layer ("warped", "template"); default: the shape selected
            in the Shapes panel.

        A file that cannot be read, or that holds a value count other than the target's vertex
        count, shows an error naming the file (and both counts); nothing is changed.
        """
        path = Path(path)
        target = item if item is not None else self.shapes_panel.selected()

        def prepare():
            if target is None:
                raise ValueError("select a shape in the Shapes panel first: an overlay colours one shape")
            n = self.scene.overlay_n_vertices(target)
            if path.exists():
                self.settings.set_last_folder("overlay", path)
            return lambda progress: tasks.load_overlay(path, n, progress)

        self.tasks.submit(Task("load overlay", prepare, lambda overlay: self._overlay_loaded(target, overlay)))

    def _overlay_loaded(self, target, overlay) -> None:
        self.scene.add_overlay(target, overlay)
        if isinstance(target, ShapeItem) and not target.visible:
            target.visible = True  # asked for: a hidden shape would show nothing
        what = (f"{len(overlay.label_names)} labels" if overlay.kind == "labels" else
                f"{float(overlay.values.min()):.3g} to {float(overlay.values.max()):.3g}")
        self.status.setText(f"Coloured {self.scene.target_name(target)} by {overlay.name} ({what}); "
                            "View ▸ Colour by switches back to the plain colour.")

    def _share_source_overlays(self, reg) -> None:
        """Give the warped source the overlays of the source: the same vertices, moved."""
        source = self.shapes.source
        if source is None or not source.overlays or "warped" not in self.scene.layers:
            return
        if source.shape.n_points != self.scene.overlay_n_vertices("warped") or source.shape.name != reg.source.name:
            return
        for overlay in source.overlays.values():
            self.scene.add_overlay("warped", overlay, show=False)
        if source.colour_by is not None:
            self.scene.set_colour_by("warped", source.colour_by)

    def mirror_item(self, item: ShapeItem) -> ShapeItem:
        """Add a copy of ``item``'s shape mirrored across x = 0 (with its overlays: same vertices)."""
        copy = self._loaded(tasks.mirror_x(item.shape))
        for overlay in item.overlays.values():
            copy.add_overlay(overlay, show=False)
        copy.colour_by = item.colour_by
        return copy

    # drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ------------------------------------------------------------------------------------ compute
    def _pair(self):
        source, target = self.shapes.source, self.shapes.target
        if source is None or target is None:
            raise ValueError("choose a source and a target first (open two shapes; the Shapes panel sets the roles)")
        if source is target:
            raise ValueError("the source and the target are the same shape; choose two different shapes")
        return source.shape, target.shape

    def register(self) -> None:
        """Register the source onto the target with the Parameters panel's preset (worker thread)."""
        def prepare():
            source, target = self._pair()
            config = self.params.registration_config()
            self._save_parameters()
            return lambda progress: tasks.register_shapes(source, target, config, progress)

        self.tasks.submit(Task("register", prepare, self._registered))

    def _registered(self, reg) -> None:
        self.result = ("registration", reg)
        self.scene.show_registration(reg)
        self._share_source_overlays(reg)
        self._overlay_roles()
        self.metrics_table.set_metrics(reg.metrics)
        self.convergence.set_history(reg.history, title=f"{reg.config.preset}: loss per round",
                                     ylabel="OT value / residual (scale²)")
        after = reg.metrics.get("after", {})
        chamfer = after.get("chamfer_surface", after.get("chamfer"))
        from shapeot.registration.report import warp_advice

        advice = warp_advice(after)
        seconds = reg.timings.get("total", 0)
        self.status.setText(f"Registered {reg.source.name} onto {reg.target.name} in {seconds:.1f} s"
                            + (f"; Chamfer after: {chamfer:.3f} {reg.source.units}" if chamfer is not None else "")
                            + (f". Note: {advice}" if advice else ""))
        self._update_actions()

    def _overlay_roles(self, *, source_opacity: float | None = None, target_opacity: float = 0.35) -> None:
        """Fade the target (and hide or fade the source) so the result layers show through."""
        source, target = self.shapes.source, self.shapes.target
        if source is not None:
            if source_opacity is None:
                source.visible = False
            else:
                source.visible = True
                source.opacity = min(source.opacity, source_opacity)
        if target is not None:
            target.visible = True
            target.opacity = min(target.opacity, target_opacity)

    def match(self) -> None:
        """OT correspondences from the source to the target (worker thread)."""
        def prepare():
            source, target = self._pair()
            opts = self.params.match_options()
            self._save_parameters()
            return lambda progress: tasks.match_shapes(source, target, blur=opts.blur, reach=opts.reach,
                                                       scaling=opts.scaling, backend=opts.backend, progress=progress)

        self.tasks.submit(Task("match", prepare, self._matched))

    def _matched(self, result) -> None:
        self.result = ("match", result)
        self.scene.show_match(result)
        self._overlay_roles(source_opacity=0.3, target_opacity=0.3)
        self.metrics_table.set_values(result.summary)
        res = result.correspondences.result
        self.convergence.set_message(f"one OT solve: {res.n_iterations} Sinkhorn iterations\n"
                                     f"(backend {res.backend}/{res.mode}, epsilon-scaling from the diameter "
                                     f"down to blur {res.blur:.3g} mm)", title="OT match")
        self.status.setText(f"Matched {result.source.name} to {result.target.name} in {result.seconds:.1f} s "
                            f"(S_eps = {float(res.value):.4g} mm², backend {res.backend})")
        self._update_actions()

    def build_template(self, folder: str | os.PathLike | None = None) -> None:
        """Build a population template from a folder of shapes (worker thread, progress per subject).

        Without ``folder``, the Template tab's folder is used, or a folder dialog asks.
        """
        if folder is None:
            folder = self.params.template_folder.text().strip() or None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder of shapes", self.settings.last_folder("template"))
            if not folder:
                return
        self.params.template_folder.setText(str(folder))

        def prepare():
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"{folder}: no such folder")
            config = self.params.template_config()
            pattern = self.params.template_pattern.text().strip() or None
            label = self.params.template_label_value()
            self.settings.set_last_folder("template", folder)
            self._save_parameters()
            return lambda progress: tasks.build_template(folder, config=config, pattern=pattern, label=label,
                                                         progress=progress)

        self.tasks.submit(Task("build template", prepare, self._template_built))

    def _template_built(self, result) -> None:
        self.result = ("template", result)
        for item in self.shapes:
            item.visible = False
        self.scene.show_template(result)
        self.scene.reset_camera()
        self.scene.render()
        self.metrics_table.set_values(template_metrics(result))
        self.convergence.set_history(result.template.history, title="template convergence",
                                     ylabel="mm", xlabel="round of each series")
        skipped = f"; {len(result.skipped)} file(s) skipped" if result.skipped else ""
        self.status.setText(f"Template of {len(result.subjects)} subjects from {result.folder}{skipped}")
        self._update_actions()

    # ------------------------------------------------------------------------------------ exports
    def _inputs(self) -> list[str]:
        return [item.shape.source.path for item in self.shapes if item.shape.source is not None]

    def export(self, kind: str, path: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """Write the current result: ``kind`` is "warped", "displacement", "correspondences",
        "registration" (every file of ``shapeot register``) or "template" (a folder: every file
        of ``shapeot template``; an existing folder is replaced only with ``overwrite``).

        Raises
        ------
        ValueError
            If there is no result of that kind, or ``path`` is an opened input file.
        """
        kind_now, result = self.result or (None, None)
        path = Path(path)
        export.check_not_input(path, self._inputs())
        if kind in ("warped", "registration") and kind_now != "registration":
            raise ValueError("no registration to export yet: Register first")
        if kind in ("displacement", "correspondences") and kind_now not in ("registration", "match"):
            raise ValueError("no registration or match to export yet")
        if kind == "template" and kind_now != "template":
            raise ValueError("no template to export yet: Build template first")
        if kind == "warped":
            written = [export.export_warped(result, path)]
        elif kind == "displacement":
            if kind_now == "registration":
                written = [export.export_displacement(result.source, result.displacement, path,
                                                      prealign=result.prealign)]
            else:
                written = [export.export_displacement(result.source, result.correspondences.displacement, path)]
        elif kind == "correspondences":
            written = [export.export_correspondences(result.correspondences, path)]
        elif kind == "registration":
            written = export.export_registration(result, path, overwrite=overwrite)
        elif kind == "template":
            written = export.export_template(result, path, overwrite=overwrite)
        else:
            raise ValueError(f"unknown export {kind!r}")
        self.settings.set_last_folder("export", path)
        self.status.setText("Wrote " + ", ".join(str(p) for p in written))
        return written

    def export_overlay(self, name: str, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write an overlay carried onto the result (worker thread), in the format of ``path``.

        After Register: the source's overlay ``name`` (loaded onto the source) on the target's
        vertices, with the resampling of ``shapeot transfer``; it also colours the target.
        After Build template: the subjects' overlay ``name`` from their FreeSurfer subject
        folders, averaged on the template (``PATH.mean`` and ``PATH.sd``, or mode and agreement).
        """
        def prepare():
            kind, result = self.result or (None, None)
            out = Path(path)
            export.check_not_input(out, self._inputs())
            if kind == "registration":
                source = self.shapes.source
                if source is None or name not in source.overlays:
                    raise ValueError(f"the source has no overlay {name!r}: load it onto the source first "
                                     "(File ▸ Load overlay)")
                overlay = source.overlays[name]
                return lambda progress: tasks.carry_overlay(overlay, result, out, overwrite=overwrite,
                                                            progress=progress)
            if kind == "template":
                return lambda progress: tasks.template_overlay_maps(result, name, out, overwrite=overwrite,
                                                                    progress=progress)
            raise ValueError("no registration or template yet: Register or Build template first")

        self.tasks.submit(Task("export overlay", prepare, self._overlay_exported))

    def _overlay_exported(self, done) -> None:
        carried, written = done
        target = self.shapes.target
        if not isinstance(carried, dict) and target is not None and carried.n_vertices == target.shape.n_points:
            target.add_overlay(carried, show=False)  # the target can now be coloured by it
        self.status.setText("Wrote " + ", ".join(str(p) for p in written))

    def _export_overlay_dialog(self) -> None:
        from PyQt5.QtWidgets import QInputDialog

        kind = self.result[0] if self.result else None
        if kind == "registration":
            names = list(self.shapes.source.overlays) if self.shapes.source is not None else []
            if not names:
                self.status.setText("Load an overlay onto the source first (File ▸ Load overlay): it is what moves.")
                return
            name, ok = QInputDialog.getItem(self, "Overlay to carry", "Source overlay:", names, 0, False)
        else:
            name, ok = QInputDialog.getText(self, "Overlay of the subjects", "Name in each subject folder "
                                            "(lh.thickness, lh.aparc.annot):", text="lh.thickness")
        if not ok or not name:
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Write {name}", os.path.join(self.settings.last_folder("export"),
                                                                                 name), OVERLAY_FILTER)
        if path:
            self.export_overlay(name, path, overwrite=Path(path).exists())  # the dialog asked before replacing

    def _export_dialog(self, kind: str) -> None:
        names = {"warped": ("warped.vtp", MESH_SAVE_FILTER),
                 "displacement": ("displacement.vtp", "VTK PolyData with point data (*.vtp);;CSV (*.csv)"),
                 "correspondences": ("correspondences.csv", "CSV (*.csv)"),
                 "registration": ("registered.vtp", MESH_SAVE_FILTER),
                 "template": ("template", "A new folder (*)")}
        default, filters = names[kind]
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind}", os.path.join(self.settings.last_folder("export"),
                                                                                  default), filters)
        if not path:
            return
        overwrite = False
        if kind == "registration":
            from shapeot.registration.write import registration_outputs

            existing = [p for p in registration_outputs(path).values() if p.exists()]
            if existing:
                answer = QMessageBox.question(self, "Replace files?", "These files exist and would be replaced:\n"
                                              + "\n".join(str(p) for p in existing))
                if answer != QMessageBox.Yes:
                    return
                overwrite = True
        if kind == "template" and Path(path).exists():
            answer = QMessageBox.question(self, "Replace folder?", f"{path} exists. Replace it with the template?")
            if answer != QMessageBox.Yes:
                return
            overwrite = True
        self._guard(f"Export {kind} failed", self.export, kind, path, overwrite=overwrite)

    def grab_image(self, *, whole_window: bool = True):
        """A QImage of the window (3D view included) or of the 3D view alone."""
        self.scene.render()
        if whole_window:
            return export.grab_window(self, self.plotter)
        return export.array_to_qimage(self.plotter.screenshot(return_img=True))

    def save_screenshot(self, path: str | os.PathLike, *, whole_window: bool = True) -> Path:
        """Write a PNG screenshot of the window (or of the 3D view alone), atomically."""
        path = Path(path)
        export.check_not_input(path, self._inputs())
        out = export.save_image(self.grab_image(whole_window=whole_window), path)
        self.settings.set_last_folder("screenshot", path)
        self.status.setText(f"Wrote {out}")
        return out

    def _screenshot_dialog(self, whole_window: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", os.path.join(
            self.settings.last_folder("screenshot"), "shapeot.png"), "PNG image (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self._guard("Screenshot failed", self.save_screenshot, path, whole_window=whole_window)

    def _reset_camera(self) -> None:
        self.scene.reset_camera()
        self.scene.render()

    # ------------------------------------------------------------------------------------ closing
    def _save_parameters(self) -> None:
        self.settings.set_parameters("panels", self.params.state())

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        """Stop the worker, save the settings, close the 3D view (VTK must go before Qt)."""
        self.tasks.shutdown(30.0)
        self._save_parameters()
        self.settings.set_window_state(self.saveGeometry(), self.saveState())
        self.settings.sync()
        for box in self.findChildren(QMessageBox):
            box.close()
        self.plotter.close()
        super().closeEvent(event)


def template_metrics(result) -> dict[str, object]:
    """Numbers of a template for the metrics table: mean and max over subjects of each
    per-subject distance to the template (``Template.distances``, mm), explained variances."""
    import numpy as np

    tpl = result.template
    out: dict[str, object] = {"subjects": len(tpl.subjects), "converged": bool(tpl.converged)}
    for key, values in dict(tpl.distances).items():
        v = np.asarray(values, dtype=np.float64)
        if v.size:
            out[f"{key.replace('_', ' ')} to template, mean (mm)"] = float(v.mean())
            out[f"{key.replace('_', ' ')} to template, max (mm)"] = float(v.max())
    for k, r in enumerate(np.asarray(tpl.modes.explained_variance_ratio)):
        out[f"mode {k + 1}: share of the variance"] = float(r)
    return out
