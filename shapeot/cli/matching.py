"""Commands ``match``, ``demo`` (the README's main job) and ``backends``."""
from __future__ import annotations

import time
from pathlib import Path

from .common import BACKENDS, Bar, CliError, check_device, load_input, metrics_table, same_units

__all__ = ["cmd_match", "cmd_demo", "cmd_backends", "add_demo_and_backends"]


def cmd_match(args) -> int:
    from shapeot.core.outputs import OutputSet, write_csv_rows
    from shapeot.matching import CSV_HEADER, check_csv_path, match

    src, tgt, out = Path(args.source), Path(args.target), Path(args.output)
    check_csv_path(out)
    with OutputSet(overwrite=args.overwrite, inputs=[src, tgt]) as outputs:
        outputs.add(out)  # checked now, before any work
        source, target = load_input(src, args, label=args.label), load_input(tgt, args, label=args.label)
        same_units(source, target)
        t = time.perf_counter()
        corr = match(source, target, blur=args.blur, reach=args.reach, scaling=args.scaling, backend=args.backend)
        elapsed = time.perf_counter() - t
        write_csv_rows(outputs.stage(out), CSV_HEADER, corr.rows())
        outputs.commit()
    res = corr.result
    print(f"S_eps = {res.value.item():.6g} {source.units}^2  blur = {res.blur:.4g} {source.units}  "
          f"backend = {res.backend}/{res.mode}  iterations = {res.n_iterations}  "
          f"marginal error = {res.marginal_error:.2e}  time = {elapsed:.2f} s")
    print(f"wrote {len(corr.mass)} correspondences to {out}")
    return 0


def cmd_demo(args) -> int:
    """The README's main job: OT match, then registration, of the left pial surface to the mirrored right one."""
    import numpy as np

    from shapeot.core.outputs import OutputSet, write_csv_rows
    from shapeot.matching import CSV_HEADER, match
    from shapeot.registration.write import check_registration_outputs, write_registration
    from shapeot.samples import sample_path
    from shapeot.shapes import Shape, load

    try:
        lh, rh = sample_path("fsaverage5_lh_pial.gii"), sample_path("fsaverage5_rh_pial.gii")
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} is a file; give a folder name")
    # Every output is checked before the work: an existing one needs --overwrite.
    csv_path = out / "lh_to_mirrored_rh_correspondences.csv"
    match_out = OutputSet(overwrite=args.overwrite, inputs=[lh, rh])
    match_out.add(csv_path)
    reg_out = None
    if not args.no_register:
        reg_out = check_registration_outputs(out / "lh_to_mirrored_rh_warped.vtp",
                                             summary=out / "lh_to_mirrored_rh_summary.json",
                                             overwrite=args.overwrite, inputs=[lh, rh])
    source = load(lh)
    right = load(rh)
    # Mirror the right hemisphere across the mid-sagittal plane (x -> -x in RAS), flipping the
    # triangles' orientation so that normals still point outwards.
    mirrored = Shape(points=right.points * np.array([-1.0, 1.0, 1.0]), faces=right.faces[:, ::-1].copy(),
                     name=f"{right.name} (mirrored)", units=right.units)
    print(f"source: {source.name}: {len(source.points)} vertices; target: {mirrored.name}: "
          f"{len(mirrored.points)} vertices; units {source.units}")
    t = time.perf_counter()
    corr = match(source, mirrored, blur=args.blur, scaling=args.scaling, backend=args.backend)
    elapsed = time.perf_counter() - t
    res = corr.result
    norms = np.linalg.norm(corr.displacement, axis=1)
    with match_out:
        write_csv_rows(match_out.stage(csv_path), CSV_HEADER, corr.rows())
        match_out.commit()
    print(f"Sinkhorn divergence S_eps = {res.value.item():.4f} mm^2 "
          f"(blur {res.blur:.2f} mm, scaling {args.scaling}, {res.n_iterations} iterations)")
    print(f"backend {res.backend}/{res.mode}, {elapsed:.2f} s, plan marginal error {res.marginal_error:.2e}")
    print(f"OT displacement to the mirrored right hemisphere: mean {norms.mean():.2f} mm, "
          f"median {np.median(norms):.2f} mm, 95th percentile {np.percentile(norms, 95):.2f} mm")
    print(f"wrote {csv_path}")
    if args.no_register:
        return 0

    from shapeot.registration import RegistrationConfig, register

    config = RegistrationConfig.from_preset("nonrigid", engine={"backend": args.backend})
    steps = ["pre-alignment", "smooth warp"] + (["fine-tuning"] if config.finetune is not None else [])
    print(f"registering (preset nonrigid): {', '.join(steps)}")
    bar = Bar()
    try:
        reg = register(source, mirrored, config, progress=bar)
    finally:
        bar.close()
    written = write_registration(reg, out / "lh_to_mirrored_rh_warped.vtp",
                                 summary=out / "lh_to_mirrored_rh_summary.json", outputs=reg_out)
    print(metrics_table(reg.metrics, source.units))
    print(f"time {reg.timings['total']:.1f} s")
    for p in written:
        print(f"wrote {p}")
    return 0


def cmd_backends(args) -> int:
    device = check_device(args.device)
    from shapeot.ot.backends import available_backends, keops_verdict

    print("available:", ", ".join(available_backends(device)))
    v = keops_verdict(device)
    print(f"keops on {device}: {'ok' if v.ok else 'not usable'} ({v.reason})")
    return 0


def add_demo_and_backends(sub, shared) -> None:
    """The ``demo`` and ``backends`` sub-commands."""
    d = sub.add_parser("demo", parents=[shared], help="OT match and registration of the two sample brain hemispheres")
    d.add_argument("-o", "--output", default="out/demo", help="folder for the results (default out/demo)")
    d.add_argument("--no-register", action="store_true", help="stop after the OT match")
    d.add_argument("--overwrite", action="store_true", help="replace the results of a previous run")
    d.add_argument("--blur", type=float, default=None, help="blur in mm (default: 1%% of the diameter)")
    d.add_argument("--scaling", type=float, default=0.8, help="epsilon-scaling ratio in (0, 1) (default 0.8)")
    d.add_argument("--backend", default="auto", choices=BACKENDS, help="OT backend (default auto)")
    d.set_defaults(func=cmd_demo)
    b = sub.add_parser("backends", parents=[shared], help="list the OT backends that work here")
    b.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    b.set_defaults(func=cmd_backends)
