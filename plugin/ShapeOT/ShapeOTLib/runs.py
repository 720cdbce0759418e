"""Register, Match and Template on MRML nodes: the module's Logic, without any widget.

Every function takes the scene as its first argument, reads its input nodes (never modifying
them), calls the same public shapeot functions as the command line (``shapeot.register``,
``shapeot.match``, ``shapeot.load_folder`` + ``shapeot.template``) and returns its outputs as
*new* nodes. Everything is computed before the first output node is added, and if anything
fails (or the user cancels through ``progress``) every node added by the call is removed again:
a cancelled run leaves the scene as it found it.

``progress(fraction, message)`` is called often with a fraction in [0, 1]; returning False
raises :class:`shapeot.core.errors.Cancelled` (the one rule of :class:`shapeot.core.progress.Progress`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import display, markups, nodes, segmentations, transforms

if TYPE_CHECKING:
    from shapeot import Shape

__all__ = [
    "RegisterResult",
    "MatchResult",
    "TemplateResult",
    "shape_from_node",
    "register_nodes",
    "match_nodes",
    "template_from_folder",
    "mode_arrays",
    "added_nodes_removed_on_error",
]

ProgressCallback = Callable[[float, str], "bool | None"]

SOURCE_COLOR = (0.35, 0.55, 0.95)
WARPED_COLOR = (0.95, 0.75, 0.3)


class added_nodes_removed_on_error:  # noqa: N801 - a context manager reads best in lower case
    """Context manager: remove the nodes added to ``scene`` inside the block if the block raises."""

    def __init__(self, scene):
        self.scene = scene
        self.before: set[str] = set()

    def _ids(self) -> set[str]:
        collection = self.scene.GetNodes()
        return {collection.GetItemAsObject(i).GetID() for i in range(collection.GetNumberOfItems())}

    def __enter__(self):
        self.before = self._ids()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            for node_id in self._ids() - self.before:
                node = self.scene.GetNodeByID(node_id)
                if node is not None:
                    self.scene.RemoveNode(node)
        return False


def shape_from_node(node, *, segment: str | None = None, smoothing: float | None = None) -> "Shape":
    """The surface of a model node, or of one segment of a segmentation node, in world RAS mm."""
    if node is None:
        raise ValueError("no input node selected")
    if node.IsA("vtkMRMLSegmentationNode"):
        return segmentations.shape_from_segment(node, segment, smoothing=smoothing)
    if node.IsA("vtkMRMLModelNode"):
        return nodes.shape_from_model(node)
    raise TypeError(f"{node.GetName()!r} is a {node.GetClassName()}; choose a model or a segmentation")


def _reduced(shape: "Shape", max_points: int | None) -> "Shape":
    """The shape decimated to about ``max_points`` vertices (itself when smaller or unset)."""
    return shape.decimate(int(max_points)) if max_points and shape.n_points > max_points else shape


@dataclass
class RegisterResult:
    """Outputs of :func:`register_nodes` (nodes already in the scene).

    Attributes
    ----------
    warped_model : vtkMRMLModelNode
        The source surface moved onto the target (the input's vertices and triangles), with point
        arrays ``displacement`` (N, 3, mm) and ``displacement_magnitude`` (N,, mm), coloured by
        the magnitude.
    transform_node : vtkMRMLGridTransformNode or vtkMRMLLinearTransformNode
        The deformation as a transform *to parent*; apply it to any node, or harden it.
    correspondences : vtkMRMLMarkupsFiducialNode or None
        The matched target points of ``n_correspondences`` source vertices spread over the surface.
    landmarks : vtkMRMLMarkupsFiducialNode or None
        The source landmarks carried through the deformation (same labels).
    registration : shapeot.Registration
        The full result (metrics, history, correspondences of every registered vertex).
    transform_report : ShapeOTLib.transforms.TransformReport
        How exactly the transform node reproduces the deformation.
    source, target : Shape
        The shapes read from the input nodes (every vertex: the registration's own working
        resolution reduces them inside ``shapeot.register``).
    """

    warped_model: Any
    transform_node: Any
    correspondences: Any
    landmarks: Any
    registration: Any
    transform_report: Any
    source: Any
    target: Any

    def summary(self) -> str:
        """A few lines for the module's status display."""
        lines = [f"{self.registration.source.name} -> {self.registration.target.name}"
                 f" ({self.registration.config.preset})"]
        from shapeot.metrics.table import metric_rows
        from shapeot.registration.report import warp_advice

        for _, label, before, after in metric_rows(self.registration.metrics, units=self.source.units, brief=True):
            lines.append(f"{label}: {before} -> {after}" if before else f"{label}: {after}")
        advice = warp_advice(self.registration.metrics.get("after", {}))
        if advice:
            lines.append(f"note: {advice}")
        r = self.transform_report
        if r.kind == "grid":
            lines.append(f"transform: grid of {r.spacing_mm:.2f} mm; error at the source vertices up to "
                         f"{r.max_error_mm:.3f} mm, elsewhere in the box up to {r.far_max_error_mm:.2f} mm (sampled)")
        else:
            lines.append(f"transform: linear (exact); max error at the source {r.max_error_mm:.2g} mm")
        return "\n".join(lines)


def register_nodes(scene, source_node, target_node, *, preset: str = "nonrigid",
                   source_segment: str | None = None, target_segment: str | None = None,
                   source_landmarks=None, target_landmarks=None, max_points: int | None = None,
                   config_overrides: Mapping[str, Any] | None = None, n_correspondences: int = 100,
                   grid_spacing: float | None = None, tolerance_mm: float = 0.1,
                   grid_options: Mapping[str, Any] | None = None, name: str | None = None,
                   progress: ProgressCallback | None = None) -> RegisterResult:
    """Register a model/segment onto another; outputs: warped model, transform, markups.

    Parameters
    ----------
    scene : vtkMRMLScene
    source_node, target_node : vtkMRMLModelNode or vtkMRMLSegmentationNode
        Inputs, read in world coordinates and left unchanged.
    preset : {"rigid", "affine", "nonrigid", "diffeomorphic"}
        ``shapeot.RegistrationConfig.from_preset(preset, **config_overrides)``.
    source_segment, target_segment : str, optional
        Segment ID or name, for segmentation inputs holding several segments.
    source_landmarks, target_landmarks : vtkMRMLMarkupsNode, optional
        Source landmarks are carried through the deformation into a new markups node; with
        target landmarks of the same count, the landmark errors (TRE) are also reported.
    max_points : int, optional
        The registration's working resolution (``RegistrationConfig.working_points``): larger
        surfaces are reduced to about this many vertices for the registration's stages (faster),
        and shapeot then moves every vertex of the full source itself.
    config_overrides : mapping, optional
        Fields of ``RegistrationConfig`` to change, nested as in its ``from_dict``
        (``{"prealign": {"starts": 1}}``).
    n_correspondences : int, default: 100
        Correspondences shown as markups (0: none).
    grid_spacing, tolerance_mm :
        Spacing (mm; None: automatic) and largest error at the source vertices (mm) of the grid
        transform (:func:`ShapeOTLib.transforms.displacement_field`).
    grid_options : mapping, optional
        Other options of :func:`ShapeOTLib.transforms.displacement_field` (``margin``,
        ``coarse_nodes``, ``max_nodes``, ``min_spacing``).
    name : str, optional
        Base name of the output nodes (default "<source> to <target>").
    progress : callable(fraction, message) -> bool, optional

    Returns
    -------
    RegisterResult
    """
    import shapeot
    from shapeot.core.progress import as_progress
    from shapeot.registration import RegistrationConfig

    overrides = dict(config_overrides or {})
    if max_points:
        overrides["working_points"] = int(max_points)
    config = RegistrationConfig.from_preset(preset, **overrides)
    prog = as_progress(progress)
    prog(0.0, "reading the input nodes")
    source = shape_from_node(source_node, segment=source_segment)
    target = shape_from_node(target_node, segment=target_segment)
    src_marks = markups.points_from_markups(source_landmarks) if source_landmarks is not None else None
    tgt_marks = markups.points_from_markups(target_landmarks) if target_landmarks is not None else None
    pairs = None
    if src_marks is not None and tgt_marks is not None and len(src_marks) and len(src_marks) == len(tgt_marks):
        pairs = (src_marks, tgt_marks)
    prog(0.03, "registering")
    reg = shapeot.register(source, target, config, progress=prog.span(0.03, 0.75), landmarks=pairs)
    moved_marks = None
    if src_marks is not None and len(src_marks):
        moved_marks = np.asarray(reg.landmarks) if pairs is not None else reg.deformation.apply(src_marks)
    base = name or f"{source.name} to {target.name}"
    with added_nodes_removed_on_error(scene):
        transform_node, report = transforms.deformation_transform_node(
            scene, reg.deformation, np.asarray(source.points), targets=np.asarray(reg.warped.points),
            matrix=np.asarray(reg.prealign) if reg.config.model is None else None,
            name=scene.GenerateUniqueName(f"{base} transform"), progress=prog.span(0.78, 0.97),
            spacing=grid_spacing, tolerance=tolerance_mm, **dict(grid_options or {}))
        prog(0.97, "creating the output nodes")
        warped_model = _warped_model(scene, reg, base)
        corr_node = _correspondence_markups(scene, reg, base, n_correspondences)
        marks_node = None
        if moved_marks is not None:
            labels = markups.labels_from_markups(source_landmarks)
            marks_node = markups.markups_from_points(scene, moved_marks,
                                                     name=scene.GenerateUniqueName(f"{base} landmarks"),
                                                     labels=labels, color=WARPED_COLOR)
        for node in (transform_node, warped_model, corr_node, marks_node):
            if node is not None:
                node.SetAttribute("ShapeOT.Source", source_node.GetID())
                node.SetAttribute("ShapeOT.Target", target_node.GetID())
                node.SetAttribute("ShapeOT.Preset", preset)
    prog(1.0, "done")
    return RegisterResult(warped_model, transform_node, corr_node, marks_node, reg, report, source, target)


def _warped_model(scene, reg, base: str):
    """The warped source as a model node: the displacement, its magnitude and the
    correspondences as point arrays, coloured by the magnitude."""
    displacement = np.asarray(reg.displacement)
    corr = reg.correspondences
    data = {**dict(reg.warped.point_data), "displacement_magnitude": np.linalg.norm(displacement, axis=1),
            "correspondence_target": np.asarray(corr.target_points), "correspondence_mass": np.asarray(corr.mass)}
    model = nodes.model_from_shape(scene, reg.warped.replace(point_data=data),
                                   name=scene.GenerateUniqueName(f"{base} warped"), color=WARPED_COLOR)
    display.show_point_scalar(model, "displacement_magnitude")
    return model


def _correspondence_markups(scene, reg, base: str, n: int):
    """``n`` correspondences spread over the source, as a markups node (None for n = 0)."""
    if n <= 0:
        return None
    idx = markups.spread_indices(np.asarray(reg.source.points), int(n))
    return markups.markups_from_points(
        scene, np.asarray(reg.correspondences.target_points)[idx],
        name=scene.GenerateUniqueName(f"{base} correspondences"), labels=[f"c{int(i)}" for i in idx],
        descriptions=[f"matched target point of source vertex {int(i)}" for i in idx], color=WARPED_COLOR)


@dataclass
class MatchResult:
    """Outputs of :func:`match_nodes`.

    Attributes
    ----------
    model : vtkMRMLModelNode
        A copy of the (possibly decimated) source with point arrays ``ot_target`` (N, 3),
        ``ot_displacement`` (N, 3), ``ot_displacement_magnitude`` (N,), ``ot_target_index`` (N,)
        and ``ot_mass`` (N,), coloured by the displacement magnitude.
    correspondences : vtkMRMLMarkupsFiducialNode or None
    matching : shapeot.matching.Correspondences
    source, target : Shape
        The shapes that were matched.
    """

    model: Any
    correspondences: Any
    matching: Any
    source: Any
    target: Any


def match_nodes(scene, source_node, target_node, *, source_segment: str | None = None,
                target_segment: str | None = None, max_points: int | None = None, blur: float | None = None,
                reach: float | None = None, n_correspondences: int = 100, name: str | None = None,
                progress: ProgressCallback | None = None) -> MatchResult:
    """OT correspondences from a model/segment to another (``shapeot.match``), as new nodes.

    Parameters are those of :func:`register_nodes`; ``max_points`` decimates both surfaces to
    about this many vertices before the OT (the match is of those); ``blur`` and ``reach`` (mm)
    are those of ``shapeot.match`` (default blur: 1 % of the joint diameter; reach None:
    balanced OT). Cancelling takes effect within a Sinkhorn iteration.
    """
    import shapeot
    from shapeot.core.progress import as_progress

    prog = as_progress(progress)
    prog(0.0, "reading the input nodes")
    source = _reduced(shape_from_node(source_node, segment=source_segment), max_points)
    target = _reduced(shape_from_node(target_node, segment=target_segment), max_points)
    prog(0.05, "optimal transport")
    matching = shapeot.match(source, target, blur=blur, reach=reach, progress=prog.span(0.05, 0.9))
    prog(0.9, "creating the output nodes")
    base = name or f"{source.name} to {target.name}"
    with added_nodes_removed_on_error(scene):
        disp = np.asarray(matching.displacement)
        data = {"ot_target": np.asarray(matching.target_points), "ot_displacement": disp,
                "ot_displacement_magnitude": np.linalg.norm(disp, axis=1),
                "ot_target_index": np.asarray(matching.target_index), "ot_mass": np.asarray(matching.mass)}
        shape = source.replace(point_data={**dict(source.point_data), **data}, name=f"{source.name} matched")
        model = nodes.model_from_shape(scene, shape, name=scene.GenerateUniqueName(f"{base} matched"),
                                       color=SOURCE_COLOR)
        display.show_point_scalar(model, "ot_displacement_magnitude")
        corr_node = None
        if n_correspondences > 0:
            idx = markups.spread_indices(np.asarray(source.points), int(n_correspondences))
            corr_node = markups.markups_from_points(
                scene, np.asarray(matching.target_points)[idx],
                name=scene.GenerateUniqueName(f"{base} correspondences"),
                labels=[f"c{int(i)}" for i in idx],
                descriptions=[f"OT image of source vertex {int(i)}" for i in idx], color=WARPED_COLOR)
        for node in (model, corr_node):
            if node is not None:
                node.SetAttribute("ShapeOT.Source", source_node.GetID())
                node.SetAttribute("ShapeOT.Target", target_node.GetID())
    prog(1.0, "done")
    return MatchResult(model, corr_node, matching, source, target)


@dataclass
class TemplateResult:
    """Outputs of :func:`template_from_folder`.

    Attributes
    ----------
    model : vtkMRMLModelNode
        The template surface (``Template.shape``, in the template frame: the subjects' common
        Procrustes frame) with point arrays ``mode_<k>`` (N, 3): the displacement of one
        standard deviation along population mode k (mm), for the first ``n_modes`` modes.
    subject_models : list of vtkMRMLModelNode
        Each subject in the template's vertex indexing (dense correspondences, template frame),
        with point array ``displacement`` (N, 3) from the template; only when asked for.
    template : shapeot.Template
    folder : shapeot.templates.LoadedFolder
        The subjects read from the folder and the files that were skipped (with reasons).
    """

    model: Any
    subject_models: list = field(default_factory=list)
    template: Any = None
    folder: Any = None

    def summary(self) -> str:
        """A few lines for the module's status display."""
        t = self.template
        lines = [f"template of {len(t.subjects)} shapes, {t.shape.n_points} vertices"
                 f" ({'converged' if t.converged else 'not converged'})"]
        sd = t.modes.standard_deviations
        if len(sd):
            ratios = t.modes.explained_variance_ratio
            lines.append("modes (SD, share): " + ", ".join(
                f"{k + 1}: {sd[k]:.2f} mm {100 * ratios[k]:.0f} %" for k in range(min(3, len(sd)))))
        if self.folder is not None and self.folder.skipped:
            lines.append(f"{len(self.folder.skipped)} file(s) skipped: "
                         + "; ".join(os.path.basename(f.path) for f in self.folder.skipped))
        return "\n".join(lines)


def mode_arrays(template, n_modes: int) -> dict[str, np.ndarray]:
    """``mode_<k>`` (N, 3): one standard deviation along each of the first ``n_modes`` modes (mm)."""
    modes = template.modes
    out = {}
    for k in range(min(int(n_modes), modes.n_modes)):
        out[f"mode_{k + 1}"] = float(np.sqrt(modes.variances[k])) * np.asarray(modes.components[k])
    return out


def template_from_folder(scene, folder: str | os.PathLike, *, pattern: str | None = None,
                         label: int | str | None = None, config=None, executor=None, n_modes: int = 3,
                         subject_models: bool = False, name: str | None = None,
                         progress: ProgressCallback | None = None) -> TemplateResult:
    """Build a population template from a folder of meshes or label maps (``shapeot.template``).

    Parameters
    ----------
    scene : vtkMRMLScene
    folder : path
        Folder of surface files or segmented scans, read by ``shapeot.load_folder`` (files it
        cannot read are skipped and listed in the result).
    pattern : str, optional
        Shell pattern of the file names to use (default: every file).
    label : int or str, optional
        Label value or segment name, for label maps.
    config : shapeot.TemplateConfig, optional
        Default: ``TemplateConfig()``.
    executor : optional
        Where the per-subject registrations run (``shapeot.template``: None in-process,
        "local" a Dask LocalCluster, or a scheduler address).
    n_modes : int, default: 3
        Population modes stored as point arrays of the template model.
    subject_models : bool, default: False
        Also add every subject in the template's vertex indexing as a model.
    name : str, optional
        Name of the template model (default "ShapeOT template (<n> subjects)").
    progress : callable, optional
    """
    import shapeot
    from shapeot.core.progress import as_progress

    prog = as_progress(progress)
    prog(0.0, "reading the folder")
    loaded = shapeot.load_folder(os.fspath(folder), pattern=pattern, label=label)
    prog(0.05, f"building a template of {len(loaded)} shapes")
    template = shapeot.template(loaded, config=config, executor=executor, progress=prog.span(0.05, 0.95))
    prog(0.95, "creating the output nodes")
    with added_nodes_removed_on_error(scene):
        shape = template.shape
        data = {**dict(shape.point_data), **mode_arrays(template, n_modes)}
        model = nodes.model_from_shape(
            scene, shape.replace(point_data=data),
            name=name or scene.GenerateUniqueName(f"ShapeOT template ({len(template.subjects)} subjects)"),
            color=SOURCE_COLOR)
        model.SetAttribute("ShapeOT.TemplateFolder", os.fspath(folder))
        if "mode_1" in data:
            model.GetPolyData().GetPointData().SetActiveVectors("mode_1")
        subjects = []
        if subject_models:
            for s, subject in enumerate(template.names):
                corresponded = template.corresponded_shape(s)
                offset = np.asarray(corresponded.point_data["displacement"])
                corresponded = corresponded.replace(point_data={
                    **dict(corresponded.point_data), "displacement_magnitude": np.linalg.norm(offset, axis=1)})
                node = nodes.model_from_shape(scene, corresponded,
                                              name=scene.GenerateUniqueName(f"{subject} (template indexing)"),
                                              color=WARPED_COLOR)
                display.show_point_scalar(node, "displacement_magnitude")
                subjects.append(node)
    prog(1.0, "done")
    return TemplateResult(model, subjects, template, loaded)
