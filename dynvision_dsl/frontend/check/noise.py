"""`noise()` (LANGUAGE.md §9.5): white noise in an ODE's right-hand side (Euler–Maruyama),
a plain standard-normal sample in an assignment below the ODEs. These checks say where it
has no meaning: with rk4 or exponential, inside a nonlinearity, in a coefficient, above the ODEs."""
from __future__ import annotations

from ...frontend import ir
from ...frontend import syntax as S
from ...diagnostics import Diagnostic, DynError, Span
from .variables import code_error

NAME = "noise"
_LINEAR = ("add", "sub", "neg", "mul", "div")


def call(e: S.Call) -> tuple[ir.EqExpr, int]:
    """The IR of a `noise()` call (dimensionless); a located error for arguments or `as`."""
    if e.args or e.kwargs:
        first = e.args[0].span if e.args else e.kwargs[0].name.span
        raise code_error("E136", "noise() takes no arguments", first,
                         "scale it instead: 'sigma * noise()' is normal with standard deviation sigma")
    if e.alias is not None:
        raise code_error("E136", "noise() has no parameters to name with 'as'", e.alias.span)
    return ir.Apply(NAME, (), e.span), 0


def in_constant(e: S.Call) -> DynError:
    """noise() where a constant is needed (a param, a delay, an operator argument, a condition)."""
    return code_error("E137", "noise() is a fresh sample at every step, not a constant", e.func.span,
                      "use it in an area's equations: 'tau * dr/dt = -r + sigma * noise()'")


def sites(expr: ir.EqExpr | None) -> list[ir.Apply]:
    """Every noise() call in `expr`."""
    return [] if expr is None else [n for n in ir.walk(expr) if isinstance(n, ir.Apply) and n.fn == NAME]


def area_errors(area: ir.Area) -> list[Diagnostic]:
    """The noise() rules of one checked area (its solver is known only once it is built)."""
    out: list[Diagnostic] = []
    for eq in area.before_odes:
        for n in sites(eq.value):
            out.append(_diag("E138", f"noise() in '{eq.var}', a variable the ODEs read: its scale per step "
                             "would be ambiguous", n.span,
                             f"write the noise term in the ODE itself ('... + sigma * noise()'), or assign "
                             f"'{eq.var}' below the ODEs for a plain sample"))
    for o in area.odes:
        for n in sites(o.coef):
            out.append(_diag("E139", f"noise() in the time constant of d{o.var}/dt", n.span,
                             "a time constant is a positive time; put the noise in the right-hand side"))
        rhs = sites(o.rhs)
        if rhs and area.solver in ("rk4", "exponential"):
            out.append(_diag("E140", f"solver {area.solver} cannot integrate noise(): white noise needs "
                             "Euler–Maruyama", rhs[0].span, "use 'solver euler' in this area"))
        elif rhs:
            bad = nonlinear_use(o.rhs)
            if bad is not None:
                out.append(_diag("E141", f"noise() must enter d{o.var}/dt linearly (as 'sigma * noise()')",
                                 bad, "white noise has no value to pass through a function; add it as a "
                                 "term scaled by a factor"))
    return out


def nonlinear_use(expr: ir.EqExpr) -> Span | None:
    """The span of the first operation that does not keep `expr` affine in its noise() terms
    (a function of noise, a product of two noisy factors, a division by noise)."""
    def combine(e, args):
        if isinstance(e, ir.Apply) and e.fn == NAME:
            return True, None
        noisy = [a[0] for a in args]
        bad = next((a[1] for a in args if a[1] is not None), None)
        if bad is not None or not any(noisy):
            return any(noisy), bad
        fn = e.fn if isinstance(e, ir.Apply) else ""
        if fn not in _LINEAR or fn == "mul" and all(noisy) or fn == "div" and noisy[1]:
            return True, e.span
        return True, None
    return ir.fold(expr, combine)[1]


def _diag(code: str, message: str, span: Span, hint: str) -> Diagnostic:
    return Diagnostic("error", message, span, hint, code)
