"""`dynv graph`: the connectivity drawing of a spec."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import add_spec_args, params, read_spec, report


def register(sub):
    s = sub.add_parser("graph", help="draw the connectivity graph", description="draw the connectivity graph")
    add_spec_args(s)
    s.add_argument("-o", "--output", required=True, help="OUT.svg, OUT.png or OUT.dot")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    return s


def run(args) -> int:
    from ..pipeline import build
    from ..plot import draw_graph
    from ..util.files import check_target

    path, source = read_spec(args.file)
    out = Path(args.output)
    if out.suffix not in (".svg", ".png", ".dot"):
        print(f"dynv: the output must end in .svg, .png or .dot, got '{out.suffix}'", file=sys.stderr)
        return 1
    check_target(out, args.force)  # a clash, a device or a read-only folder: say so before building
    program, diags = build(source, params(args), file=str(path))
    report(diags, source)
    draw_graph(program.graph, out)
    print(f"wrote {out}")
    return 0
