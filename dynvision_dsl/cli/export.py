"""`dynv export`: a spec's model as a NIR graph or an ONNX file."""
from __future__ import annotations

import sys

from .common import add_spec_args, compile_spec, params, read_spec

FORMATS = ("nir", "onnx")


def register(sub):
    s = sub.add_parser("export", help="write a spec's model as NIR (.nir) or ONNX (.onnx)",
                       description="write a spec's model as a NIR graph or an ONNX file unrolled for its steps")
    add_spec_args(s)
    s.add_argument("--to", required=True, choices=FORMATS, help="the format")
    s.add_argument("-o", "--output", required=True, help="the file to write")
    s.add_argument("--weights", help="a state dict saved with torch.save (default: the initial weights)")
    s.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    s.add_argument("--steps", type=int, help="ONNX: steps to unroll (default: the spec's)")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    return s


def run(args) -> int:
    import torch

    from ..interop import InteropError
    if args.to == "nir" and args.steps is not None:
        print("dynv: --steps applies to --to onnx only (a NIR graph is not unrolled; its dt and steps "
              "travel as metadata)", file=sys.stderr)
        return 1
    path, source = read_spec(args.file)
    torch.manual_seed(args.seed)
    model = compile_spec(source, params(args), str(path)).eval()
    try:
        if args.weights:
            model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
        _write(model, args)
    except (InteropError, FileExistsError, FileNotFoundError, RuntimeError) as exc:
        print(f"dynv: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


def _write(model, args) -> None:
    if args.to == "nir":
        from ..interop.nir import export

        export(model, args.output, overwrite=args.force)
    else:
        from ..interop.onnx import export

        export(model, args.output, steps=args.steps, overwrite=args.force)
