"""`dynv export`: a spec's model as a NIR graph or an ONNX file."""
from __future__ import annotations

import sys

from .common import add_spec_args, read_spec, trained_model

FORMATS = ("nir", "onnx")


def register(sub):
    s = sub.add_parser("export", help="write a spec's model as NIR (.nir) or ONNX (.onnx)",
                       description="write a spec's model as a NIR graph or an ONNX file unrolled for its steps")
    add_spec_args(s)
    s.add_argument("--to", required=True, choices=FORMATS, help="the format")
    s.add_argument("-o", "--output", required=True, help="the file to write")
    s.add_argument("--weights", help="a checkpoint of dynv train (its params and input normalisation come with it) "
                   "or a state dict saved with torch.save (default: the initial weights)")
    s.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    s.add_argument("--steps", type=int, help="ONNX: steps to unroll (default: the spec's)")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    return s


def run(args) -> int:
    from ..interop import InteropError
    if args.to == "nir" and args.steps is not None:
        print("dynv: --steps applies to --to onnx only (a NIR graph is not unrolled; its dt and steps "
              "travel as metadata)", file=sys.stderr)
        return 1
    path, source = read_spec(args.file)
    model = trained_model(args, path, source).eval()  # a bad --weights is a CheckpointError: one line, exit 1
    try:
        _write(model, args)
    except (InteropError, FileExistsError, FileNotFoundError, RuntimeError) as exc:
        print(f"dynv: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    if model.input_transform is not None:
        print(f"note: {args.weights} was trained on images normalised by {model.input_transform.describe()}: "
              + ("the ONNX graph normalises its input itself" if args.to == "onnx" else
                 "a NIR graph has no node for that, so feed it normalised images (its metadata "
                 "records the normalisation)"), file=sys.stderr)
    return 0


def _write(model, args) -> None:
    if args.to == "nir":
        from ..interop.nir import export

        export(model, args.output, overwrite=args.force)
    else:
        from ..interop.onnx import export

        export(model, args.output, steps=args.steps, overwrite=args.force)
