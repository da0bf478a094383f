"""`dynv compile`: the standalone PyTorch module of a spec."""
from __future__ import annotations

from .common import add_spec_args, params, read_spec, report


def register(sub):
    s = sub.add_parser("compile", help="write a standalone PyTorch module for a spec",
                       description="write a standalone PyTorch module for a spec")
    add_spec_args(s)
    s.add_argument("-o", "--output", required=True, help="the .py file to write")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    return s


def run(args) -> int:
    from ..render import render
    from ..pipeline import build
    from ..util.files import check_target, write_atomic

    path, source = read_spec(args.file)
    check_target(args.output, args.force)  # a clash, a device or a read-only folder: say so before building
    program, diags = build(source, params(args), file=str(path))
    report(diags, source)
    write_atomic(args.output, render(program, spec_name=path.as_posix()), overwrite=args.force)
    print(f"wrote {args.output}")
    return 0
