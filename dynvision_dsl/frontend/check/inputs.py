"""Several inputs and readouts (LANGUAGE.md 9.8): each input its own shape, in declaration order;
each readout named by the `as` name of its last operator, else by its area; names unique."""
from __future__ import annotations

from typing import Callable

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import Sink, Span


def check_inputs(decls: list[S.InputDecl], sink: Sink, dims_of: Callable[[S.InputDecl], tuple | None],
                 area_spans: dict[str, Span], file: str) -> list[ir.InputSpec] | None:
    """The inputs in declaration order; None when there is none or one is broken (reported)."""
    if not decls:
        sink.error("the spec has no input", Span(file, 1, 1, 1, 2), "add 'input image [3, 64, 64]'", code="E029")
        return None
    out: list[ir.InputSpec] = []
    first: dict[str, S.InputDecl] = {}
    for d in decls:
        name = d.name.name
        if name in first:
            sink.error(f"input '{name}' is declared twice (first at line {first[name].span.line})", d.name.span,
                       "give each input its own name", code="E150")
            continue
        first[name] = d
        dims = dims_of(d)
        if name in area_spans:
            sink.error(f"area '{name}' has the name of the input (line {d.span.line})", area_spans[name],
                       "give the area another name", code="E038")
        if dims is not None:
            out.append(ir.InputSpec(name, dims, d.span))
    return out if len(out) == len(first) else None


def readout_name(d: S.Readout) -> tuple[str, Span]:
    """A readout's name and where it is written: its last operator's `as` name, else its area."""
    last = d.pipeline[-1] if d.pipeline else None
    if last is not None and last.alias is not None:
        return last.alias.name, last.alias.span
    return d.source.name, d.source.span


def check_readout_names(decls: list[S.Readout], sink: Sink) -> set[int]:
    """Two readouts with one name would be one key of `forward`'s dict: an error at the second.
    Returns the positions of the readouts reported (they are left out of later checks)."""
    seen: dict[str, int] = {}
    clashes: set[int] = set()
    for i, d in enumerate(decls):
        name, span = readout_name(d)
        if name in seen:
            sink.error(f"two readouts are named '{name}' (the first at line {seen[name]})", span,
                       "name each readout by its last operator, e.g. '... | linear(10) as objects'", code="E151")
            clashes.add(i)
        seen.setdefault(name, d.span.line)
    return clashes


def readout_base(name: str, several: bool) -> str:
    """The state-dict prefix of a readout's unnamed operators: `readout`, or `readout_NAME` when
    there are several (a dotted `as` name becomes underscores)."""
    return f"readout_{name.replace('.', '_')}" if several else "readout"
