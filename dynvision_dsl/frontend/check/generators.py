"""Generators (LANGUAGE.md section 9.7): `for NAME in A..B { ... }` repeats top-level
declarations, and `{EXPR}` in a name interpolates a whole number (`L{i+1}`).

A stage over the AST, run while `if` blocks are selected (params are known then):
a loop's body is copied once per value with the loop variable replaced by the number,
and every span in the copy remembers the value, so that an error found in it later
says which one (`area 'L2' is defined twice ... (for i = 2)`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError, Span, did_you_mean
from ..values import Evaluator, Val, source_text

MAX_ITERATIONS = 10_000  # values one loop may take: a typo like 1..1e9 must not hang the checker
Lookup = Callable[[str, Span], Val]


@dataclass(frozen=True)
class LoopSpan(Span):
    """A span inside a generated copy of a loop body, with the loop values that made it."""

    loop: tuple[tuple[str, int], ...] = ()

    @property
    def note(self) -> str:
        return "for " + ", ".join(f"{name} = {value}" for name, value in self.loop)


def _error(code: str, message: str, span: Span, hint: str | None = None) -> DynError:
    return DynError([Diagnostic("error", message, span, hint, code)])


# ------------------------------------------------------------------ loops
def unroll(loop: S.For, lookup: Lookup, source: str, params: dict) -> list:
    """The loop's body once per value of its variable, in order, the variable replaced."""
    var = loop.var.name
    if var in params:
        raise _error("E116", f"loop variable '{var}' has the name of param '{var}' (line {params[var]})",
                     loop.var.span, f"rename the loop variable, e.g. 'for {'j' if var != 'j' else 'k'} in ...'")
    outer = dict(loop.span.loop) if isinstance(loop.span, LoopSpan) else {}
    if var in outer:
        raise _error("E117", f"loop variable '{var}' is already the variable of an enclosing loop",
                     loop.var.span, "give the inner loop another variable, e.g. 'j'")
    start = _bound(loop.start, lookup, source, "start")
    stop = _bound(loop.stop, lookup, source, "end")
    if stop < start - 1:
        raise _error("E111", f"the loop 'for {var} in {start}..{stop}' runs backwards ({start} > {stop})",
                     loop.stop.span, f"write '{stop}..{start}'; bounds are inclusive and count up "
                     f"(A..A-1 is an empty loop)")
    if stop - start + 1 > MAX_ITERATIONS:
        raise _error("E112", f"the loop over '{var}' takes {stop - start + 1} values, more than the "
                     f"{MAX_ITERATIONS} a loop may take", loop.stop.span, "lower its end")
    out: list = []
    for value in range(start, stop + 1):
        out.extend(substitute(loop.body, var, value))
    return out


def _bound(expr: S.Expr, lookup: Lookup, source: str, which: str) -> int:
    val = Evaluator(source, lookup)(expr)
    if not _whole(val):
        raise _error("E110", f"the {which} of a loop must be a whole number, but '{source_text(source, expr.span)}' "
                     f"is {val.describe()}", expr.span, "loops count whole numbers: 'for i in 1..4'")
    return int(val.v)


def _whole(val: Val) -> bool:
    return val.is_number and val.dim == 0 and not isinstance(val.v, bool) and float(val.v) == int(val.v)


# ----------------------------------------------------------- substitution
def substitute(decls: tuple, var: str, value: int) -> list:
    """Copies of `decls` with the name `var` read as the number `value`, every span noting it."""
    return [_copy(d, var, value) for d in decls]


def _copy(node, var: str, value: int):
    if isinstance(node, Span):
        return _noted(node, var, value)
    if isinstance(node, S.Name) and node.name == var:
        span = _noted(node.span, var, value)
        return S.Num(float(value), None, str(value), span)
    if isinstance(node, S.BinOp):
        return _copy_chain(node, var, value)
    if isinstance(node, tuple):
        return tuple(_copy(x, var, value) for x in node)
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return node
    changes = {f.name: _copy(getattr(node, f.name), var, value) for f in dataclasses.fields(node)}
    return dataclasses.replace(node, **changes)


def _copy_chain(node: S.BinOp, var: str, value: int) -> S.BinOp:
    """A left-nested chain (`a + b + c + ...`, any length) copied in a loop, not by recursion."""
    spine = [node]
    while isinstance(spine[-1].left, S.BinOp):
        spine.append(spine[-1].left)
    left = _copy(spine[-1].left, var, value)
    for n in reversed(spine):
        left = S.BinOp(n.op, left, _copy(n.right, var, value), _noted(n.span, var, value))
    return left


def _noted(span: Span, var: str, value: int) -> LoopSpan:
    loop = span.loop if isinstance(span, LoopSpan) else ()
    return LoopSpan(span.file, span.line, span.col, span.end_line, span.end_col, loop + ((var, value),))


# ----------------------------------------------------------- interpolation
def plain_names(decl, lookup: Lookup, source: str, params: dict):
    """`decl` with every interpolated name it declares or refers to made plain (`L{i+1}` -> `L3`)."""
    name = lambda ident: interpolate(ident, lookup, source, params) if ident is not None else None
    if isinstance(decl, (S.AreaDecl, S.Readout)):
        field = "name" if isinstance(decl, S.AreaDecl) else "source"
        decl = dataclasses.replace(decl, **{field: name(getattr(decl, field))})
    if isinstance(decl, (S.Connection, S.Readout)):
        ops = tuple(dataclasses.replace(op, alias=name(op.alias)) for op in decl.pipeline)
        decl = dataclasses.replace(decl, pipeline=ops)
    if isinstance(decl, S.Connection):
        chain = tuple(dataclasses.replace(e, area=name(e.area), port=name(e.port)) for e in decl.chain)
        decl = dataclasses.replace(decl, chain=chain)
    return decl


def interpolate(ident: S.Ident, lookup: Lookup, source: str, params: dict) -> S.Ident:
    """A plain name: each `{EXPR}` of `ident` replaced by its whole-number value."""
    if not ident.parts:
        return ident
    text = []
    for part in ident.parts:
        text.append(part if isinstance(part, str) else str(_piece(part, lookup, source, params, ident)))
    return S.Ident("".join(text), ident.span)


def _piece(expr: S.Expr, lookup: Lookup, source: str, params: dict, ident: S.Ident) -> int:
    unknown = next((e for e in S.walk_exprs(expr) if isinstance(e, S.Name) and e.name not in params), None)
    if unknown is not None:
        loops = [n for n, _ in ident.span.loop] if isinstance(ident.span, LoopSpan) else []
        guess = did_you_mean(unknown.name, loops + list(params))
        raise _error("E115", f"unknown name '{unknown.name}' in the name '{ident.name}': not a loop variable "
                     "or a param" + (f" (did you mean '{guess}'?)" if guess else ""), unknown.span,
                     "a name interpolates loop variables and params: 'L{i}' inside 'for i in ...'")
    val = Evaluator(source, lookup)(expr)
    if not _whole(val) or val.v < 0:
        raise _error("E113", f"'{{{source_text(source, expr.span)}}}' in the name '{ident.name}' must be a "
                     f"whole number of at least 0, but it is {val.describe()}", expr.span,
                     "interpolate whole numbers: 'L{i + 1}'")
    return int(val.v)


def register_areas(decl, names: dict[str, int], spans: dict[str, Span]) -> None:
    """Note a generated area's plain name, as the survey of the written names noted the others."""
    if isinstance(decl, S.AreaDecl):
        names.setdefault(decl.name.name, decl.name.span.line)
        spans.setdefault(decl.name.name, decl.name.span)


# -------------------------------------------------------------- reporting
def with_loop_notes(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each finding once (the first loop value that made it), saying which value that was."""
    seen, out = set(), []
    for d in diagnostics:
        key = (d.severity, d.message, d.code, d.span.file, d.span.line, d.span.col)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(d.span, LoopSpan) and d.span.loop:
            d = dataclasses.replace(d, message=f"{d.message} ({d.span.note})")
        out.append(d)
    return out
