"""`dynv import`: a readable spec (and its weights) from a NIR graph of rate primitives."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub):
    s = sub.add_parser("import", help="write a .dyn spec and its weights from a NIR graph",
                       description="write a .dyn spec (and SPEC.pt, its weights) from a NIR graph")
    s.add_argument("file", help="the .nir file")
    s.add_argument("--dt", help="time step, e.g. 1ms (default: the graph's dt metadata)")
    s.add_argument("--steps", type=int, help="steps of the spec (default: the graph's, else 10)")
    s.add_argument("-o", "--output", required=True, help="the .dyn file to write; weights go beside it (.pt)")
    s.add_argument("--force", action="store_true", help="replace existing files")
    return s


def parse_dt(text: str | None) -> float | None:
    """'1ms', '1 ms', '0.5ms' or '0.001s' in milliseconds."""
    if text is None:
        return None
    t = text.strip().replace(" ", "")
    scale = 1.0 if t.endswith("ms") else 1e3 if t.endswith("s") else None
    try:
        value = float(t[:-2] if t.endswith("ms") else t[:-1]) * scale if scale else None
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise ValueError(f"--dt {text!r} is not a positive time; write e.g. --dt 1ms")
    return value


def run(args) -> int:
    import torch

    from ..interop import InteropError
    from ..interop.nir import load
    from ..util.files import atomic_targets

    spec, weights = Path(args.output), Path(args.output).with_suffix(".pt")
    try:
        if args.steps is not None and args.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {args.steps}")
        imported = load(args.file, parse_dt(args.dt), args.steps)
        imported.compile()  # the spec checks and the weights fit before anything is written
        clash = [str(p) for p in (spec, weights) if p.exists()]
        if clash and not args.force:
            raise FileExistsError(f"{', '.join(clash)} exist; pass --force to replace them")
        with atomic_targets([weights, spec], overwrite=True) as (tmp_weights, tmp_spec):  # both or neither
            torch.save(imported.state_dict, tmp_weights)
            Path(tmp_spec).write_text(imported.spec)
    except (InteropError, ValueError, FileExistsError) as exc:
        print(f"dynv: {args.file}: {exc}", file=sys.stderr)
        return 1
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {spec} and {weights} (run it: dynv run {spec} --weights {weights})")
    return 0
