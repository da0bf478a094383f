"""`dynv experiment`: probe a spec with one of DynVision's stimulus protocols (the names and
their one-line help come from the one protocol table, science/experiment/table.py)."""
from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from .common import add_device_arg


def register(sub):
    from ..science.experiment.protocol import NOISE_MODES, NOISES
    from ..science.experiment.table import PROTOCOLS

    listing = "; ".join(f"{p.name}: {p.help}" for p in PROTOCOLS.values())
    s = sub.add_parser("experiment", help="probe a spec with a stimulus protocol; write a CSV and PNGs",
                       description="Probe a spec with one of DynVision's stimulus protocols and write a CSV of "
                                   "every measured value and a PNG per measure (one curve per --sweep variant). "
                                   f"Protocols: {listing}.")
    s.add_argument("name", choices=tuple(PROTOCOLS), help="the protocol")
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
    s.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="one variant per value, drawn as one curve each (repeat for a grid)")
    s.add_argument("--checkpoint", help="weights from `dynv train` (a checkpoint or a state dict)")
    s.add_argument("--partial-weights", action="store_true",
                   help="load only the checkpoint's tensors that fit (by name and shape) even when it fits no "
                        "variant exactly; the rest keep their seeded values")
    s.add_argument("--images", default="digits",
                   help="digits (default: the held-out split), folder:PATH (a seeded sample of "
                        "--n-images of its images), or an image file")
    s.add_argument("--n-images", type=int, default=32, help="how many images to average over (default 32)")
    s.add_argument("--levels", metavar="V1,V2,...",
                   help="the protocol's values (durations, gaps or warm-ups in steps, contrasts, SNRs, "
                        "run lengths as multiples of steps, blank intensities)")
    s.add_argument("--intro", type=int, default=40,
                   help="blank steps before the first presentation, for the baseline to settle (default 40)")
    s.add_argument("--on", type=int, default=8, help="interval: steps of each presentation (default 8)")
    s.add_argument("--noise", choices=NOISES, default="gaussian", help="noise: the kind of noise (default gaussian)")
    s.add_argument("--noise-mode", choices=NOISE_MODES, default="dynamic",
                   help="noise: a fresh sample every step (dynamic, default) or one for all steps (static)")
    s.add_argument("--batch", type=int, default=32, help="images per forward pass (default 32)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, image choice and noise (default 0)")
    s.add_argument("--out", help="output folder (default: runs/experiment-NAME-SPEC)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    add_device_arg(s)
    return s


def run(args) -> int:
    """Exit status 0, or 1 with a `dynv: ...` line for a problem the user can fix."""
    from ..checkpoint import CheckpointError
    from ..science.experiment import ExperimentError

    try:
        with ExitStack() as stack:
            return _run(args, stack)
    except (ExperimentError, CheckpointError, FileNotFoundError) as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1


def _checked(args):
    """The protocol, its levels and the output files, refusing bad numbers before anything runs."""
    from ..science.experiment import ExperimentError, get_protocol, output_paths

    proto = get_protocol(args.name)
    levels = proto.parse_levels(args.levels) if args.levels else None
    if args.n_images < 1:
        raise ExperimentError(f"--n-images must be at least 1, got {args.n_images}")
    if args.batch < 1:
        raise ExperimentError(f"--batch must be at least 1, got {args.batch}")
    if proto.labelled and not (args.images == "digits" or args.images.startswith("folder:")
                               or Path(args.images).is_dir()):
        raise ExperimentError(f"the {proto.name} protocol measures accuracy and needs labelled images: "
                              "use --images digits or --images folder:PATH (one sub-folder per class)")
    out = Path(args.out or f"runs/experiment-{args.name}-{Path(args.file).stem}")
    return proto, levels, out, output_paths(args.name, out, args.name)


def _claim(out: Path, targets: list[Path], force: bool, stack: ExitStack) -> None:
    """Lock the folder and make sure every target may be written, before anything is simulated."""
    from ..science.experiment import ExperimentError
    from ..util.files import RunFolder, check_replaceable

    folder = stack.enter_context(RunFolder(out, "dynv experiment", tuple(t.name for t in targets)))
    for note in folder.notes:
        print(note, file=sys.stderr)
    clash = [str(t) for t in targets if os.path.lexists(t)]
    if clash and not force:
        raise ExperimentError(f"{', '.join(clash)} exist{'s' * (len(clash) == 1)}; pass --force to replace "
                              f"{'it' if len(clash) == 1 else 'them'} or choose --out")
    for target in targets:
        check_replaceable(target, overwrite=True)  # a directory or device in the way: say so before simulating


def _run(args, stack: ExitStack) -> int:
    from .. import checkpoint as ckpt_mod
    from ..science.experiment import Images, format_table, make_variants, parse_sweep, run_protocol, write_csv
    from ..science.plot import figures as figures_mod
    from ..util.params import parse_set
    from ..util.provenance import describe
    from ..util.files import atomic_targets
    from ..util.source import read_spec_text

    from ..util.device import resolve_device

    device = resolve_device(args.device)  # before anything is built: a missing GPU is a usage error
    spec = Path(args.file)
    text = read_spec_text(spec)  # a missing or binary spec is a DynError naming it
    proto, levels, out, targets = _checked(args)
    sweeps = [parse_sweep(s) for s in args.sweep or []]
    params = parse_set(args.set)
    _claim(out, targets, args.force, stack)
    checkpoint = ckpt_mod.load(args.checkpoint) if args.checkpoint else None
    variants = make_variants(text, params, sweeps, args.seed, checkpoint, file=str(spec),
                             log=lambda line: print(line, file=sys.stderr), partial=args.partial_weights,
                             source=str(args.checkpoint))
    for variant in variants:
        variant.model.to(device)  # the protocols send their stimuli to the model's device
    images = Images(args.images, args.n_images, args.seed)
    labels = images.get(tuple(variants[0].model.input_shape))[1]  # the choice of images ignores the shape
    result = run_protocol(proto.name, {v.label: v.model for v in variants}, lambda shape: images.get(shape)[0],
                          labels=labels, levels=levels, batch=args.batch, seed=args.seed, on=args.on,
                          intro=args.intro, weights={v.label: v.weights for v in variants},
                          title=f"{variants[0].model.program.model.name} ({spec.name})",
                          noise=args.noise, noise_mode=args.noise_mode)
    stimulus = args.images if Path(args.images).is_file() else f"{args.images} ({args.n_images} images)"
    result.source = describe(params, stimulus, args.checkpoint, args.seed)
    meta = _metadata(args, spec, params, stimulus, result, sweeps)
    with atomic_targets(targets, overwrite=args.force) as temps:  # all files or none
        write_csv(result, temps[0], overwrite=True)
        figures_mod.write_figures(result, temps[1:-1])
        Path(temps[-1]).write_text(json.dumps(meta, indent=2) + "\n")
    print(format_table(result))
    print("wrote " + ", ".join(str(t) for t in targets))
    return 0


def _metadata(args, spec: Path, params, stimulus: str, result, sweeps) -> dict:
    """NAME.json: where the values came from (spec, params, images, weights, versions) and the protocol's settings."""
    from ..util.provenance import metadata

    meta = {**metadata("dynv experiment", spec, params, stimulus=stimulus, weights=args.checkpoint, seed=args.seed,
                       command_line=getattr(args, "command_line", None)),
            "protocol": result.protocol, "levels": result.levels, "sweeps": dict(sweeps),
            "weights_per_variant": result.weights}
    if result.protocol == "noise":
        meta |= {"noise": args.noise, "noise_mode": args.noise_mode}
    return meta
