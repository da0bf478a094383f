"""What every spec subcommand shares: reading the spec, printing diagnostics, the common flags."""
from __future__ import annotations

import sys
from pathlib import Path

from ..util.params import parse_set
from ..util.source import read_spec_text


def add_spec_args(s) -> None:
    """The spec file and `--set` overrides, as every spec subcommand takes them."""
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")


def params(args) -> dict[str, str]:
    return parse_set(args.set)


def read_spec(path: str) -> tuple[Path, str]:
    """The spec's path and text; a missing, binary or unreadable file raises DynError naming it."""
    return Path(path), read_spec_text(path)


def report(diags, source: str) -> None:
    for d in diags:
        print(d.format(source), file=sys.stderr)
