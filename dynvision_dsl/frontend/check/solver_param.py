"""`solver NAME` where NAME is a string param (LANGUAGE.md section 9.10), so that
`--set integrator=rk4` switches an area's solver. A solver's own name always wins."""
from __future__ import annotations

from typing import Callable

from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError, did_you_mean, unknown
from ..values import Val


def solver_name(stmt: S.SolverStmt, solvers: tuple[str, ...], value: Callable[[str], Val | None]) -> str:
    """The solver a `solver` statement selects; `value(name)` is the param of that name, or None."""
    name, span = stmt.solver.name, stmt.solver.span
    if name in solvers:
        return name
    val = value(name)
    if val is None:
        raise DynError([Diagnostic("error", unknown("solver", name, solvers), span,
                                   "solvers: " + ", ".join(solvers) + ", or a string param naming one", "E047")])
    if not isinstance(val.v, str):
        raise DynError([Diagnostic("error", f"solver param '{name}' is {val.describe()}, not a string naming a solver",
                                   span, f"write e.g. 'param {name} = \"euler\"'", "E127")])
    if val.v not in solvers:
        guess = did_you_mean(val.v, solvers)
        raise DynError([Diagnostic("error", f"solver param '{name}' is \"{val.v}\", which is not a solver"
                                   + (f" (did you mean '{guess}'?)" if guess else ""), span,
                                   "solvers: " + ", ".join(solvers), "E126")])
    return val.v
