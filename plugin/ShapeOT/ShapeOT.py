"""ShapeOT: optimal-transport shape registration, correspondences and templates in 3D Slicer.

A scripted loadable module (Slicer's Extension Wizard layout): ``ShapeOT`` (metadata),
``ShapeOTWidget`` (the panel, from ``Resources/UI/ShapeOT.ui``, bound to a parameter node saved
with the scene), ``ShapeOTLogic`` (no widget needed; takes the MRML scene as an argument and
delegates to ``ShapeOTLib``) and ``ShapeOTTest`` (runs inside Slicer). The science lives in the
``shapeot`` package, which this module installs into Slicer's Python on first use, asking first.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional, Union

import ctk  # noqa: F401 - loads the CTK widget wrappers used by the .ui file
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLModelNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTransformNode,
)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text: str) -> str:
        return text

from ShapeOTLib import install

PRESETS = ["rigid", "affine", "nonrigid", "diffeomorphic"]


#
# ShapeOT
#


class ShapeOT(ScriptedLoadableModule):
    """Module metadata (Slicer's ScriptedLoadableModule base class)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("ShapeOT")
        self.parent.categories = [_("Shape Analysis")]
        self.parent.dependencies = []
        self.parent.contributors = ["shapeot developers"]
        self.parent.helpText = _(
            "Register a model or segment onto another with robust optimal transport (rigid, affine, "
            "non-rigid or diffeomorphic), show dense OT correspondences, and build a population "
            "template from a folder of meshes or label maps. Outputs are new nodes: the warped model "
            "with its displacement, a transform that hardens onto it, markups of correspondences and "
            "landmarks. See the extension's README (plugin/README.md)."
        )
        self.parent.acknowledgementText = _(
            "Built on the shapeot optimal-transport engine (BSD-3-Clause). Methods: Feydy et al. "
            "(AISTATS 2019), Shen, Feydy et al. (NeurIPS 2021), Durrleman et al. (NeuroImage 2014)."
        )


#
# Parameter node
#


@parameterNodeWrapper
class ShapeOTParameterNode:
    """Everything the panel shows, saved with the scene.

    Inputs: ``sourceNode``/``targetNode`` (model or segmentation; ``*SegmentID`` picks the
    segment), optional landmark lists. Settings: the registration ``preset``, ``maxPoints``
    (decimate larger inputs; 0: never), ``correspondences`` (markups shown), ``gridSpacing``
    (mm; 0: automatic). Template: ``templateFolder``, ``templatePattern``, ``templateLabel``,
    ``templateSubjectModels``. The last outputs are referenced so they are found again after
    reloading the scene.
    """

    sourceNode: Union[vtkMRMLModelNode, vtkMRMLSegmentationNode]
    targetNode: Union[vtkMRMLModelNode, vtkMRMLSegmentationNode]
    sourceSegmentID: str = ""
    targetSegmentID: str = ""
    sourceLandmarks: vtkMRMLMarkupsFiducialNode
    targetLandmarks: vtkMRMLMarkupsFiducialNode
    preset: Annotated[str, Choice(PRESETS)] = "nonrigid"
    maxPoints: Annotated[int, WithinRange(0, 10_000_000)] = 20000
    correspondences: Annotated[int, WithinRange(0, 5000)] = 100
    gridSpacing: Annotated[float, WithinRange(0.0, 50.0)] = 0.0
    templateFolder: Path
    templatePattern: str = ""
    templateLabel: str = ""
    templateSubjectModels: bool = False
    warpedModel: vtkMRMLModelNode
    outputTransform: vtkMRMLTransformNode
    correspondenceMarkups: vtkMRMLMarkupsFiducialNode
    landmarkMarkups: vtkMRMLMarkupsFiducialNode
    templateModel: vtkMRMLModelNode


#
# ShapeOTWidget
#


class ShapeOTWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, settings, Register / Match / Template buttons, progress and results."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: Optional[ShapeOTLogic] = None
        self._parameterNode: Optional[ShapeOTParameterNode] = None
        self._parameterNodeGuiTag = None
        self._updatingSegments = False

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ShapeOT.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = ShapeOTLogic(slicer.mrmlScene)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.sourceSelector.connect("currentNodeChanged(vtkMRMLNode*)", lambda node: self._fillSegments("source"))
        self.ui.targetSelector.connect("currentNodeChanged(vtkMRMLNode*)", lambda node: self._fillSegments("target"))
        self.ui.sourceSegmentComboBox.connect("currentIndexChanged(int)", lambda i: self._storeSegment("source"))
        self.ui.targetSegmentComboBox.connect("currentIndexChanged(int)", lambda i: self._storeSegment("target"))
        self.ui.registerButton.connect("clicked(bool)", self.onRegisterButton)
        self.ui.matchButton.connect("clicked(bool)", self.onMatchButton)
        self.ui.templateButton.connect("clicked(bool)", self.onTemplateButton)
        self.ui.installButton.connect("clicked(bool)", self.onInstallButton)

        self.initializeParameterNode()
        self._showDependencyStatus()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()
        if self._parameterNode is not None and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode is not None:
            if self._parameterNodeGuiTag is not None:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.sourceNode:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLModelNode")
            if first:
                self._parameterNode.sourceNode = first

    def setParameterNode(self, inputParameterNode: Optional[ShapeOTParameterNode]) -> None:
        if self._parameterNode is not None:
            if self._parameterNodeGuiTag is not None:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode is not None:
            # Widgets with a "SlicerParameterName" property in the .ui are bound both ways.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._fillSegments("source")
            self._fillSegments("target")
        self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        inputs = bool(p and p.sourceNode and p.targetNode)
        for button in (self.ui.registerButton, self.ui.matchButton):
            button.enabled = inputs
            button.toolTip = _("Run on the source and target") if inputs else _("Select a source and a target")
        chosen = str(p.templateFolder) if p and p.templateFolder else ""
        folder = chosen not in ("", ".") and Path(chosen).is_dir()
        self.ui.templateButton.enabled = folder
        self.ui.templateButton.toolTip = _("Build the template") if folder else _("Select a folder of shapes")

    # ------------------------------------------------------------------ segments
    def _fillSegments(self, which: str) -> None:
        """List the segments of a segmentation input in its combo box (item data: segment ID)."""
        combo = getattr(self.ui, f"{which}SegmentComboBox")
        node = getattr(self.ui, f"{which}Selector").currentNode()
        self._updatingSegments = True
        try:
            combo.clear()
            isSegmentation = node is not None and node.IsA("vtkMRMLSegmentationNode")
            combo.enabled = isSegmentation
            if isSegmentation:
                segmentation = node.GetSegmentation()
                for i in range(segmentation.GetNumberOfSegments()):
                    sid = segmentation.GetNthSegmentID(i)
                    combo.addItem(segmentation.GetSegment(sid).GetName(), sid)
                stored = getattr(self._parameterNode, f"{which}SegmentID", "") if self._parameterNode else ""
                index = combo.findData(stored) if stored else -1
                combo.setCurrentIndex(index if index >= 0 else 0)
        finally:
            self._updatingSegments = False
        self._storeSegment(which)

    def _storeSegment(self, which: str) -> None:
        if self._updatingSegments or self._parameterNode is None:
            return
        combo = getattr(self.ui, f"{which}SegmentComboBox")
        data = combo.itemData(combo.currentIndex) if combo.count else None
        setattr(self._parameterNode, f"{which}SegmentID", str(data) if data else "")

    # ------------------------------------------------------------------ dependencies, progress
    def _showDependencyStatus(self) -> None:
        s = install.status()
        if s.ready:
            self.ui.dependencyStatusLabel.text = _("shapeot {version} and torch {torch} are installed.").format(
                version=s.shapeot, torch=s.torch)
        else:
            self.ui.dependencyStatusLabel.text = _("Not installed yet: {missing}. ShapeOT offers to install "
                                                   "them on first use.").format(missing=", ".join(s.missing))

    def _ensureDependencies(self) -> bool:
        """Offer to install shapeot into Slicer's Python; True when it can be imported."""
        ok = install.ensure_shapeot(confirm=lambda text: slicer.util.confirmOkCancelDisplay(
            text, windowTitle=_("ShapeOT - install Python packages")))
        self._showDependencyStatus()
        if not ok:
            self.ui.statusLabel.text = _("shapeot is not installed: nothing was run.")
        return ok

    def _progress(self, title: str):
        """A modal progress dialog with a Cancel button, and the callback shapeot reports to."""
        dialog = slicer.util.createProgressDialog(windowTitle=_("ShapeOT"), labelText=title, maximum=1000,
                                                  autoClose=False, autoReset=False)
        dialog.setCancelButtonText(_("Cancel"))

        def callback(fraction: float, message: str) -> bool:
            dialog.value = int(round(1000 * fraction))
            dialog.labelText = f"{title}: {message}"
            slicer.app.processEvents()
            return not dialog.wasCanceled

        return dialog, callback

    def _run(self, title: str, failure: str, work) -> None:
        """Run ``work(progress)`` with a progress dialog; errors go to Slicer's error display."""
        if not self._ensureDependencies():
            return
        from shapeot.core.errors import Cancelled

        with slicer.util.tryWithErrorDisplay(failure, waitCursor=True):
            dialog, callback = self._progress(title)
            try:
                message = work(callback)
            except Cancelled:
                self.ui.statusLabel.text = _("{title} cancelled: no output was added to the scene.").format(title=title)
                return
            finally:
                dialog.close()
            self.ui.statusLabel.text = message

    # ------------------------------------------------------------------ actions
    def onRegisterButton(self) -> None:
        p = self._parameterNode

        def work(progress) -> str:
            result = self.logic.register(
                p.sourceNode, p.targetNode, preset=p.preset,
                source_segment=p.sourceSegmentID or None, target_segment=p.targetSegmentID or None,
                source_landmarks=p.sourceLandmarks, target_landmarks=p.targetLandmarks,
                max_points=p.maxPoints or None, n_correspondences=p.correspondences,
                grid_spacing=p.gridSpacing or None, progress=progress)
            p.warpedModel = result.warped_model
            p.outputTransform = result.transform_node
            p.correspondenceMarkups = result.correspondences
            p.landmarkMarkups = result.landmarks
            return result.summary()

        self._run(_("Registration"), _("ShapeOT registration failed."), work)

    def onMatchButton(self) -> None:
        p = self._parameterNode

        def work(progress) -> str:
            result = self.logic.match(
                p.sourceNode, p.targetNode, source_segment=p.sourceSegmentID or None,
                target_segment=p.targetSegmentID or None, max_points=p.maxPoints or None,
                n_correspondences=p.correspondences, progress=progress)
            p.correspondenceMarkups = result.correspondences
            return _("Matched {n} source points: OT displacement stored in '{name}'.").format(
                n=result.source.n_points, name=result.model.GetName())

        self._run(_("Matching"), _("ShapeOT matching failed."), work)

    def onTemplateButton(self) -> None:
        p = self._parameterNode
        label = p.templateLabel.strip()

        def work(progress) -> str:
            result = self.logic.template(
                Path(p.templateFolder), pattern=p.templatePattern.strip() or None,
                label=(int(label) if label.lstrip("-").isdigit() else label) or None,
                subject_models=p.templateSubjectModels, progress=progress)
            p.templateModel = result.model
            return result.summary()

        self._run(_("Template"), _("ShapeOT template failed."), work)

    def onInstallButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Installing shapeot failed."), waitCursor=True):
            if install.status().ready:
                slicer.util.infoDisplay(_("shapeot is already installed."))
            else:
                self._ensureDependencies()
        self._showDependencyStatus()


#
# ShapeOTLogic
#


class ShapeOTLogic(ScriptedLoadableModuleLogic):
    """All computations, usable without the widget (batch mode, Python console, tests).

    The scene is an argument: ``ShapeOTLogic(slicer.mrmlScene).register(sourceModel, targetModel)``.
    Each method calls ``ShapeOTLib.runs``; see there for the parameters and the outputs.
    """

    def __init__(self, scene=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        if scene is None:
            raise ValueError("ShapeOTLogic needs the MRML scene: ShapeOTLogic(slicer.mrmlScene)")
        self.scene = scene

    def getParameterNode(self) -> ShapeOTParameterNode:
        return ShapeOTParameterNode(super().getParameterNode())

    def register(self, sourceNode, targetNode, **options):
        """Register ``sourceNode`` onto ``targetNode``: ``ShapeOTLib.runs.register_nodes``."""
        from ShapeOTLib import runs

        return runs.register_nodes(self.scene, sourceNode, targetNode, **options)

    def match(self, sourceNode, targetNode, **options):
        """OT correspondences between two nodes: ``ShapeOTLib.runs.match_nodes``."""
        from ShapeOTLib import runs

        return runs.match_nodes(self.scene, sourceNode, targetNode, **options)

    def template(self, folder, **options):
        """A population template from a folder of files: ``ShapeOTLib.runs.template_from_folder``."""
        from ShapeOTLib import runs

        return runs.template_from_folder(self.scene, folder, **options)


#
# ShapeOTTest
#


class ShapeOTTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode: "Reload and Test", or ``Slicer --testing``).

    Registers the fsaverage5 left pial surface onto a subject of the sample cohort (both from
    the repository's ``sample_meshes/``, decimated to ``n_points`` vertices) through the Logic,
    then checks the outputs: displacement arrays, metrics, hardening of the output transform to
    0.1 mm, untouched inputs, correspondences.
    """

    n_points = 2000
    config_overrides: dict = {}

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_RegisterSampleBrains()

    def test_RegisterSampleBrains(self) -> None:
        import numpy as np

        samples = Path(__file__).resolve().parents[2] / "sample_meshes"
        source_file, target_file = samples / "fsaverage5_lh_pial.gii", samples / "cohort" / "subject_01.gii"
        if not (source_file.is_file() and target_file.is_file()):
            self.skipTest(f"sample brains not found in {samples} (run the module from a shapeot checkout)")
        if not install.status().ready:
            self.skipTest("shapeot is not installed in Slicer's Python (open the module once to install it)")
        from ShapeOTLib import nodes, transforms

        import shapeot

        self.delayDisplay("Loading the sample brains")
        scene = slicer.mrmlScene
        source = nodes.model_from_shape(scene, shapeot.load(source_file).decimate(self.n_points), name="lh pial")
        target = nodes.model_from_shape(scene, shapeot.load(target_file).decimate(self.n_points), name="subject 01")
        before = [nodes.shape_from_model(n) for n in (source, target)]

        self.delayDisplay("Registering (nonrigid)")
        logic = ShapeOTLogic(scene)
        result = logic.register(source, target, preset="nonrigid", config_overrides=self.config_overrides)
        logging.info(result.summary())

        warped = nodes.shape_from_model(result.warped_model)
        self.assertEqual(warped.n_points, before[0].n_points)
        np.testing.assert_allclose(warped.point_data["displacement"], warped.points - before[0].points, atol=1e-9)
        self.assertIn("displacement_magnitude", warped.point_data)
        metrics = result.registration.metrics
        self.assertLess(metrics["after"]["chamfer_surface"], 0.5 * metrics["before"]["chamfer_surface"])

        moved = transforms.transform_points(result.transform_node, before[0].points)
        self.assertLess(float(np.linalg.norm(moved - warped.points, axis=1).max()), 0.1)

        for node, shape in zip((source, target), before):  # the inputs are untouched
            now = nodes.shape_from_model(node)
            np.testing.assert_array_equal(now.points, shape.points)
            np.testing.assert_array_equal(now.faces, shape.faces)
        self.assertIsNotNone(result.correspondences)
        self.delayDisplay(f"Test passed: {os.linesep.join(result.summary().splitlines())}")
