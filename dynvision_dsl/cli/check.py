"""`dynv check`: diagnostics only."""
from __future__ import annotations

from .common import add_spec_args, params, read_spec, report


def register(sub):
    s = sub.add_parser("check", help="check a spec and print its diagnostics",
                       description="check a spec and print its diagnostics")
    add_spec_args(s)
    s.add_argument("--strict", action="store_true", help="treat warnings as errors")
    return s


def run(args) -> int:
    from ..pipeline import check

    path, source = read_spec(args.file)
    diags = check(source, params(args), file=str(path))
    report(diags, source)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    print(f"{path}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return 1 if errors or (args.strict and warnings) else 0
