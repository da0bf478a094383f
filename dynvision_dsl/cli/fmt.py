"""`dynv fmt`: rewrite specs in the canonical layout, or with --check only say which would change."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub):
    s = sub.add_parser("fmt", help="format specs in the canonical layout (comments kept)",
                       description="format .dyn specs in the canonical layout; only whitespace changes, "
                                   "and comments stay where they are")
    s.add_argument("files", nargs="+", metavar="FILE", help="the .dyn specs")
    s.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would be reformatted")
    return s


def run(args) -> int:
    from ..diagnostics import DynError
    from ..tooling.fmt import format_source
    from ..util.files import write_atomic
    from ..util.source import read_spec_text

    status = 0
    for name in args.files:
        path = Path(name)
        try:
            source = read_spec_text(path)  # a missing, binary or non-UTF-8 file is a DynError naming it
        except DynError as exc:
            print(exc.render(), file=sys.stderr)
            status = 1
            continue
        try:
            text = format_source(source, str(path))
        except DynError as exc:
            print(exc.render(), file=sys.stderr)
            print(f"{path}: not formatted (fix the syntax error first)", file=sys.stderr)
            status = 1
            continue
        if text == source:
            continue
        if args.check:
            print(f"{path}: would be reformatted")
            status = 1
        else:
            write_atomic(path, text, overwrite=True)
            print(f"{path}: reformatted")
    return status
