"""`dynv explain CODE`: what a diagnostic code means, with a wrong and a fixed example."""
from __future__ import annotations

import sys
import textwrap

from ..diagnostics import CATALOGUE, Code, did_you_mean
from ..diagnostics.examples import example_params, example_spec


def register(sub):
    s = sub.add_parser("explain", help="explain a diagnostic code (e.g. E052)",
                       description="print what a diagnostic code means, with a wrong and a fixed example")
    s.add_argument("code", help="a code such as E052 or W001 (as printed in error[E052])")
    return s


def text(entry: Code) -> str:
    """The explanation of one catalogue entry, as `dynv explain` prints it: the wrong example
    (completed to a spec, diagnostics/examples.py) with the diagnostic it gets, then the fixed one."""
    lines = [f"{entry.code}: {entry.title} ({entry.severity})", "", textwrap.fill(entry.explanation, 88)]
    for label, example in (("wrong", entry.wrong), ("fixed", entry.fixed)):
        example = example_spec(example) if example else ""
        if example:
            lines += ["", f"{label}:", *("    " + ln for ln in _shown(example).rstrip("\n").split("\n"))]
        if example and label == "wrong":
            found = _first(example, entry.code)
            lines += [f"  gives: {found}"] if found else []
    return "\n".join(lines)


def _first(example: str, code: str) -> str | None:
    """The first line of the diagnostic with `code` that checking the example gives."""
    from ..pipeline import check
    from ..util.params import parse_set

    given = parse_set([f"{k}={v}" for k, v in example_params(example).items()])
    found = [d for d in check(example, given, file="wrong.dyn") if d.code == code]
    return found[0].format().split("\n")[0] if found else None


def _shown(example: str) -> str:
    """An example as text a terminal shows (a NUL byte as \\0)."""
    return example.replace("\x00", "\\0")


def run(args) -> int:
    code = args.code.strip().upper()
    if code in CATALOGUE:
        print(text(CATALOGUE[code]))
        return 0
    guess = did_you_mean(code, list(CATALOGUE))
    hint = f"did you mean {guess}?" if guess else f"codes run {min(CATALOGUE)} to {max(CATALOGUE)}"
    print(f"dynv explain: unknown code '{args.code}' ({hint}); codes look like E052 or W001", file=sys.stderr)
    return 2
