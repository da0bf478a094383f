"""`dynv compile`: the standalone PyTorch module of a spec; `--dump-after PASS` prints each step
variant's graph after a pass instead, `--time-passes` the time each pass took."""
from __future__ import annotations

import sys

from .common import add_spec_args, params, read_spec, report, spec_warnings_printed


def register(sub):
    s = sub.add_parser("compile", help="write a standalone PyTorch module for a spec",
                       description="write a standalone PyTorch module for a spec")
    add_spec_args(s)
    s.add_argument("-o", "--output", help="the .py file to write (required unless --dump-after)")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    s.add_argument("--dump-after", metavar="PASS", help="print each step variant's fx graph after the pass PASS "
                   "(and the passes before it) and write nothing (a name that is no pass lists them)")
    s.add_argument("--time-passes", action="store_true", help="print a table of each pass's time (and of the lint after it), the step "
                   "variants it changed and the nodes before and after it")
    return s


def run(args) -> int:
    wrong = _usage(args)
    if wrong:
        print(f"dynv compile: {wrong}", file=sys.stderr)
        return 2
    if args.dump_after:
        return _dump(args)
    from ..pipeline import build, pass_reports
    from ..render import render
    from ..util.files import check_target, write_atomic

    path, source = read_spec(args.file)
    check_target(args.output, args.force)  # a clash, a device or a read-only folder: say so before building
    program, diags = build(source, params(args), file=str(path))
    report(diags, source)
    write_atomic(args.output, render(program, spec_name=path.as_posix()), overwrite=args.force)
    print(f"wrote {args.output}")
    if args.time_passes:
        _print_times(pass_reports(program))
    return 0


def _usage(args) -> str | None:
    """What is wrong with the flags (an unknown pass, no output), before any work; None if nothing."""
    from ..backend.passes import NAMES
    from ..diagnostics.suggest import unknown

    if args.dump_after is not None and args.dump_after not in NAMES:
        return f"{unknown('pass', args.dump_after, NAMES)} for --dump-after; the passes are {', '.join(NAMES)}"
    if args.dump_after is None and not args.output:
        return "-o/--output FILE is required (or --dump-after PASS to print the graphs instead)"
    if args.dump_after is not None and args.output:
        return "--dump-after prints the graphs and writes no module: drop -o/--output"
    return None


def _dump(args) -> int:
    """Print every step variant's graph after --dump-after's pass."""
    from ..backend.dump import format_graph
    from ..pipeline import dump_after

    path, source = read_spec(args.file)
    dumps = spec_warnings_printed(source, lambda: dump_after(source, args.dump_after, params(args), file=str(path)))
    print("\n\n".join(format_graph(name, graph, args.dump_after) for name, graph, _ in dumps))
    if args.time_passes:
        _print_times([r for *_, reports in dumps for r in reports])
    return 0


def _print_times(reports) -> None:
    from ..backend.passmanager import timing_table

    print(timing_table(reports))
