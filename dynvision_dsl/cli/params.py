"""`dynv params`: every param of a spec with its default, kind and comment."""
from __future__ import annotations

import sys

from .common import add_spec_args, params, read_spec, report


def register(sub):
    text = "list a spec's params: default, value after --set, kind and the comment beside each"
    s = sub.add_parser("params", help=text, description=text)
    add_spec_args(s)
    s.add_argument("--json", action="store_true", help="print the table as JSON")
    return s


def run(args) -> int:
    from ..paramtable import format_table, param_table, to_json

    path, source = read_spec(args.file)
    rows, diags = param_table(source, params(args), file=str(path))
    print(to_json(rows) if args.json else format_table(rows))
    errors = [d for d in diags if d.is_error]
    if errors:
        report(errors, source)
        print(f"{path}: {len(errors)} error{'s' * (len(errors) != 1)}", file=sys.stderr)
    return 1 if errors else 0
