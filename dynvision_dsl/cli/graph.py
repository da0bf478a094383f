"""`dynv graph`: the connectivity drawing of a spec, collapsed or grouped, or its time view."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import add_spec_args, params, read_spec, report

SUFFIXES = (".svg", ".png", ".pdf", ".html", ".dot")


def register(sub):
    s = sub.add_parser("graph", help="draw the connectivity graph", description=(
        "draw the connectivity graph (.svg with tooltips, .png, .pdf, .html to pan and zoom, .dot); "
        "Graphviz lays out .svg/.png/.pdf when `dot` is installed, matplotlib otherwise"))
    add_spec_args(s)
    s.add_argument("-o", "--output", required=True, help="OUT.svg, OUT.png, OUT.pdf, OUT.html or OUT.dot")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    s.add_argument("--collapse", action="store_true",
                   help="draw each stage (areas sharing a name prefix before '_', e.g. l1_0a..l1_1) as one box")
    s.add_argument("--expand", action="append", default=[], metavar="NAME",
                   help="with --collapse: keep this stage's areas (repeatable; implies --collapse)")
    s.add_argument("--group", action="append", default=[], metavar="[NAME=]A,B",
                   help="draw these areas as one box (repeatable)")
    s.add_argument("--timeline", action="store_true",
                   help="draw when each area and connection first becomes present (biological vs engineering time)")
    s.add_argument("--engine", choices=("auto", "graphviz", "matplotlib"), default="auto",
                   help="who lays out .svg/.png/.pdf (default: graphviz if `dot` is on PATH)")
    return s


def run(args) -> int:
    from ..pipeline import build
    from ..science.plot.collapse import GroupError, choose, collapse
    from ..science.plot.graph import draw_graph
    from ..science.plot.timeline import TimelinePicture
    from ..util.files import check_target

    out = Path(args.output)
    if out.suffix.lower() not in SUFFIXES:
        return _fail(f"the output must end in {', '.join(SUFFIXES)}, got '{out.suffix or out.name}'")
    if args.timeline and out.suffix.lower() == ".dot":
        return _fail("--timeline draws a picture: use .svg, .png, .pdf or .html, not .dot")
    check_target(out, args.force)  # a clash, a device or a read-only folder: say so before building
    path, source = read_spec(args.file)
    program, diags = build(source, params(args), file=str(path))
    report(diags, source)
    try:
        graph = collapse(program.graph, choose(program.graph, args.collapse, args.expand, args.group))
    except GroupError as exc:
        return _fail(str(exc))
    if args.timeline:
        TimelinePicture(graph).save(out)
    else:
        try:
            draw_graph(graph, out, engine=args.engine)
        except RuntimeError as exc:  # graphviz missing or failing
            return _fail(str(exc))
    print(f"wrote {out}")
    return 0


def _fail(message: str) -> int:
    print(f"dynv: {message}", file=sys.stderr)
    return 1
