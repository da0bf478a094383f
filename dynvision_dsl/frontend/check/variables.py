"""Variables before ODEs (LANGUAGE.md §9.2): which assignments of an area are algebraic
variables its ODEs read, and the located errors for the ways that reading can go wrong."""
from __future__ import annotations

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError, Span


def code_error(code: str, message: str, span: Span, hint: str | None = None) -> DynError:
    """A one-diagnostic DynError carrying a catalogue code."""
    return DynError([Diagnostic("error", message, span, hint, code)])


def before_odes(stmts: list) -> set[int]:
    """The ids of the assignments written above the area's first ODE (none without an ODE)."""
    first = next((i for i, s in enumerate(stmts) if isinstance(s, S.Ode)), None)
    if first is None:
        return set()
    return {id(s) for s in stmts[:first] if isinstance(s, S.Assign)}


def placement_errors(stmts: list, states: dict, pre: set[int]) -> list[Diagnostic]:
    """An assignment between two ODEs, a variable above the ODEs that names a state, and a
    variable above them assigned again below them: each is ambiguous, so each is an error."""
    odes = [i for i, s in enumerate(stmts) if isinstance(s, S.Ode)]
    if not odes:
        return []
    out: list[Diagnostic] = []
    above = {s.var.name for s in stmts if id(s) in pre}
    for i, s in enumerate(stmts):
        if not isinstance(s, S.Assign):
            continue
        name = s.var.name
        if odes[0] < i < odes[-1]:
            out.append(Diagnostic("error", f"'{name}' is assigned between two ODEs", s.var.span,
                                  "move it above the ODEs (a variable they read) or below them "
                                  "(it then runs after the step)", "E130"))
        elif id(s) in pre and name in states:
            out.append(Diagnostic("error", f"'{name}' is a state, but an assignment above the ODEs defines a "
                                  "variable they read", s.var.span,
                                  f"move '{name} = ...' below the ODEs to overwrite the state after the step",
                                  "E131"))
        elif id(s) not in pre and i > odes[-1] and name in above:
            out.append(Diagnostic("error", f"'{name}' is a variable the ODEs read (assigned above them) and is "
                                  "assigned again below them", s.var.span,
                                  "give the second one another name", "E132"))
    return out


def read_before_assigned(name: str, span: Span, in_ode: bool, in_pre: bool) -> DynError:
    """Why `name`, assigned further down, cannot be read here."""
    if in_pre:
        return code_error("E133", f"'{name}' is used before it is assigned: the variables above the ODEs are "
                          f"evaluated in order, and '{name}' is assigned later", span,
                          f"move the assignment of '{name}' above this one, or declare a state "
                          f"('state {name} = 0') to read its previous value")
    if in_ode:
        return code_error("E134", f"'{name}' is used before it is assigned (the differential equations are "
                          "integrated before the assignments below them run)", span,
                          f"move the assignment of '{name}' above the ODEs to make it a variable they read, "
                          f"or declare a state ('state {name} = 0') to read its previous value")
    return code_error("E135", f"'{name}' is used before it is assigned (it is assigned further down)", span,
                      f"declare it as a state ('state {name} = 0') to read its previous value")


def inline(expr: ir.EqExpr, defs: dict[str, ir.EqExpr]) -> ir.EqExpr:
    """`expr` with every variable in `defs` replaced by its definition (for the exponential solver,
    whose a*X + b split must see through the variables to the states they read)."""
    def combine(e, args):
        if isinstance(e, ir.Ref) and e.kind == "var" and e.name in defs:
            return defs[e.name]
        if isinstance(e, ir.Apply) and e.args:
            return ir.Apply(e.fn, tuple(args), e.span, e.module, e.options)
        return e
    return ir.fold(expr, combine)


def definitions(area: ir.Area) -> dict[str, ir.EqExpr]:
    """Each variable above the ODEs as an expression over states, ports and constants only."""
    defs: dict[str, ir.EqExpr] = {}
    for a in area.before_odes:
        defs[a.var] = inline(a.value, defs)
    return defs
