"""What every spec subcommand shares: reading the spec, printing diagnostics, the common flags."""
from __future__ import annotations

import sys
from pathlib import Path

from ..util.params import parse_set


def add_spec_args(s) -> None:
    """The spec file and `--set` overrides, as every spec subcommand takes them."""
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")


def params(args) -> dict[str, str]:
    return parse_set(args.set)


def read_spec(path: str) -> tuple[Path, str]:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"dynv: no such file: {path}")
    return p, p.read_text()


def report(diags, source: str) -> None:
    for d in diags:
        print(d.format(source), file=sys.stderr)
