"""One area at a time: its shape, template and statements (states, optional ports, ODEs,
assignments, output, solver) resolved into an `ir.Area`."""
from __future__ import annotations

from ...diagnostics import Span, unknown
from ...middle.algebra import linear_split
from .. import ir
from .. import syntax as S
from ..values import Evaluator, dim_text, err, fmt_quantity
from . import coefficient as CO
from . import solver_param as SP
from ..values import Val
from .context import TIME_NAME, FLOAT32_MAX, AreaState, Context, float32, need_time
from . import noise as noise_rules, variables
from .equations import expr
from .templates import flatten, instantiate, lookup_const
from .time_input import whole

SOLVERS = ("euler", "rk4", "exponential")


def areas(ctx: Context, decls: list[S.AreaDecl]) -> dict[str, ir.Area]:
    """Every area of the variant that passes its own checks."""
    out: dict[str, ir.Area] = {}
    first: dict[str, int] = {}
    for d in decls:
        name = d.name.name
        if name in first:
            ctx.sink.error(f"area '{name}' is defined twice (first at line {first[name]})", d.name.span, code="E023")
            continue
        first[name] = d.span.line
        ctx.selected_areas.add(name)
        area = ctx.attempt(lambda d=d: build_area(ctx, d))
        if area is not None:
            out[name] = area
    return out


def build_area(ctx: Context, d: S.AreaDecl) -> ir.Area:
    name = d.name.name
    shape = [whole(ctx, e, f"the channel count of {name}" if i == 0 else "a size", 1) for i, e in enumerate(d.shape)]
    if len(shape) not in (1, 3):
        raise err(f"area {name} has shape {shape}; write [channels] or [channels, height, width]",
                  _span_of(d.shape, d.name.span), code="E037")
    st = AreaState(d, ir.Area(name, shape[0], tuple(shape[1:]) if len(shape) == 3 else None, d.span,
                              name_span=d.name.span))
    if d.template is not None:
        st.stmts.extend(instantiate(ctx, st, d.template))
    st.stmts.extend(flatten(ctx, st, d.body))
    _declare(ctx, st)
    st.pre = variables.before_odes(st.stmts)
    st.pre_names = {s.var.name for s in st.stmts if id(s) in st.pre}
    before = len(ctx.sink.items)
    ctx.sink.items.extend(variables.placement_errors(st.stmts, st.states, st.pre))
    for s in st.stmts:
        ctx.attempt(lambda s=s: statement(ctx, st, s))
    ctx.sink.items.extend(noise_rules.area_errors(st.area))
    st.area.incomplete = any(x.is_error for x in ctx.sink.items[before:])
    _finish(ctx, st)
    return st.area


def _span_of(exprs, fallback: Span) -> Span:
    if not exprs:
        return fallback
    a, b = exprs[0].span, exprs[-1].span
    return Span(a.file, a.line, a.col, b.end_line, b.end_col)


def _declare(ctx: Context, st: AreaState) -> None:
    """States (declared or integrated) and optional ports, before any equation reads them."""
    for s in st.stmts:
        if isinstance(s, S.StateDecl):
            _new_state(ctx, st, s.var)
        elif isinstance(s, S.Ode) and s.var.name not in st.states:
            st.states[s.var.name] = None
            st.state_spans[s.var.name] = s.var.span
    for s in st.stmts:
        if isinstance(s, S.PortDecl):
            ctx.attempt(lambda s=s: _declare_port(ctx, st, s))
    st.area.optional_ports = tuple(st.declared_ports)


def _new_state(ctx: Context, st: AreaState, var: S.Ident) -> None:
    if var.name in st.state_spans and var.name in st.states and st.states[var.name] is not None:
        ctx.sink.error(f"state '{var.name}' of {st.name} is declared twice", var.span, code="E023")
    st.states[var.name] = None
    st.state_spans[var.name] = var.span


def _declare_port(ctx: Context, st: AreaState, s: S.PortDecl) -> None:
    """`port fb`: an optional port; it may not reuse a name the area already gives a meaning."""
    n = s.var.name
    if n in st.declared_ports:
        raise err(f"port '{n}' of {st.name} is declared twice (first at line {st.declared_ports[n].line})",
                  s.var.span, code="E023")
    what = ("a state" if n in st.states else "a variable" if any(isinstance(x, S.Assign) and x.var.name == n
                                                                 for x in st.stmts)
            else "a param" if st.scope.get(n) is not None or n in st.trainable or n in ctx.params else None)
    if what is not None:
        raise err(f"port '{n}' of {st.name} has the name of {what}", s.var.span,
                  f"give the port another name, or delete 'port {n}'", code="E053")
    st.declared_ports[n] = s.var.span


def statement(ctx: Context, st: AreaState, s) -> None:
    if isinstance(s, S.StateDecl):
        _state_init(ctx, st, s)
    elif isinstance(s, S.Ode):
        _ode(ctx, st, s)
    elif isinstance(s, S.Assign):
        _assign(ctx, st, s)
    elif isinstance(s, S.OutputStmt):
        st.area.output = s.var.name
        st.output_span = s.var.span
    elif isinstance(s, S.SolverStmt):
        st.area.solver = SP.solver_name(s, SOLVERS, lambda n: _param_or_none(ctx, st, n))


def _param_or_none(ctx: Context, st: AreaState, name: str) -> Val | None:
    """The value of the param or template argument `name` visible here, or None if there is none."""
    known = st.scope.get(name) is not None or name in ctx.params
    return lookup_const(ctx, st)(name, st.decl.span) if known else None


def _state_init(ctx: Context, st: AreaState, s: S.StateDecl) -> None:
    init = Evaluator(ctx.src, lookup_const(ctx, st))(s.init)
    if not init.is_number or isinstance(init.v, bool) or init.dim != 0:
        raise err(f"the initial value of '{s.var.name}' must be a dimensionless number, got "
                  f"{init.describe()}", s.init.span, code="E042")
    st.states[s.var.name] = ir.Const(float32(float(init.v), ctx.text(s.init), s.init.span), s.init.span)


def _ode(ctx: Context, st: AreaState, s: S.Ode) -> None:
    if any(o.var == s.var.name for o in st.area.odes):
        raise err(f"'{s.var.name}' of {st.name} has two differential equations", s.var.span, code="E043")
    coef, want = None, -1
    if s.coef is not None:
        _known_coefficient(ctx, st, s.coef)
        coef, cdim = expr(ctx, st, s.coef, in_ode=True)
        if cdim != 1:
            raise _not_a_time(ctx, st, s, cdim)
        _positive_time_constant(ctx, st, coef, s)
        want = 0
    rhs, rdim = expr(ctx, st, s.rhs, in_ode=True)
    if rdim != want:
        what = "dimensionless" if want == 0 else "1/time"
        raise err(f"the right side of d{s.var.name}/dt is {dim_text(rdim)}, but must be {what}", s.rhs.span,
                  "multiply the derivative by a time constant: 'tau * dr/dt = ...'" if want == -1 else None,
                  code="E044")
    st.area.odes.append(ir.OdeEq(s.var.name, coef, rhs, s.span))


def _not_a_time(ctx: Context, st: AreaState, s: S.Ode, cdim: int):
    """The coefficient is no time; a param whose definition lacks the unit is blamed at its definition."""
    message = (f"the coefficient of d{s.var.name}/dt must be a time, but '{ctx.text(s.coef)}' is "
               f"{dim_text(cdim)}")
    role = f"the time constant of d{s.var.name}/dt"
    local = _local_definition(st, s.coef)
    if local is not None:
        use = s.coef.span
        return err(f"{message} (its definition '{ctx.text_at(local)}' has no unit)", local,
                   f"write the unit in its definition, e.g. '{ctx.text_at(local)} ms'; "
                                   f"'{s.coef.name}' is used as {role} at line {use.line}, column {use.col}",
                   code="E032")
    return need_time(ctx, s.coef, message, "write e.g. 'tau * dr/dt = ...' with tau in ms", role)


def _local_definition(st: AreaState, e: S.Expr) -> Span | None:
    """Where an area param is defined by a bare number, when `e` is just its name."""
    if not isinstance(e, S.Name) or e.name not in st.param_spans:
        return None
    decl = next((p for p in _area_params(st) if p.name.name == e.name), None)
    if decl is None or not isinstance(decl.value, S.Num) or decl.value.unit is not None:
        return None
    return decl.value.span


def _area_params(st: AreaState):
    body = list(st.decl.body)
    while body:
        s = body.pop()
        if isinstance(s, S.ParamDecl):
            yield s
        elif isinstance(s, S.If):
            body.extend([*s.then, *s.orelse])


def _assign(ctx: Context, st: AreaState, s: S.Assign) -> None:
    n = s.var.name
    if st.scope.get(n) is not None or n in st.trainable or n in ctx.params:
        line = ctx.params[n].decl.span.line if n in ctx.params else None
        raise err(f"cannot assign to param '{n}'" + (f" (declared at line {line})" if line else ""),
                  s.var.span, "params are constants; give the variable another name", code="E045")
    st.in_pre = id(s) in st.pre
    value, vdim = expr(ctx, st, s.value, in_ode=False)
    if vdim != 0:
        raise err(f"'{n}' must be dimensionless, but the value is {dim_text(vdim)}", s.value.span, code="E046")
    st.assigned.add(n)
    (st.area.before_odes if st.in_pre else st.area.assigns).append(ir.AssignEq(n, value, s.span))


def _positive_time_constant(ctx: Context, st: AreaState, coef: ir.EqExpr, s: S.Ode) -> None:
    value = coef.value if isinstance(coef, ir.Const) else (
        st.area.trainables.get(coef.path) if isinstance(coef, ir.ParamRef) else CO.constant_value(coef))
    if value is not None and value <= 0:
        raise err(f"the time constant of d{s.var.name}/dt must be positive, but '{ctx.text(s.coef)}' is "
                  f"{fmt_quantity(value, 1)}", s.coef.span, "a leak 'tau * dr/dt = -r + ...' needs tau > 0",
                  code="E033")
    dt = ctx.dt
    if value is not None and dt is not None and not dt / value <= FLOAT32_MAX:
        raise err(f"dt / '{ctx.text(s.coef)}' is {dt / value:.3g}, beyond the float32 range the model "
                  f"computes in (about 3.4e38)", s.coef.span, "use a larger time constant or a smaller dt",
                  code="E011")


def _known_coefficient(ctx: Context, st: AreaState, coef: S.Expr) -> None:
    """A time constant must be a param or template argument; any other name would read as a port."""
    if not isinstance(coef, S.Name):  # a parenthesised coefficient: each name in it
        for name in [e for e in S.walk_exprs(coef) if isinstance(e, S.Name) and e.name != TIME_NAME]:
            _known_coefficient(ctx, st, name)
        return
    n = coef.name
    if (st.scope.get(n) is not None or n in st.trainable or n in st.states or n in st.assigned
            or n in ctx.all_param_names or _defines(n, st.stmts)):
        return
    cands = {p: ctx.params[p].decl.span.line for p in ctx.params}
    cands.update({p: coef.span.line for p in [*_scope_names(st), *st.trainable]})
    raise err(unknown("param", n, cands, coef.span.line), coef.span,
              "a time constant is a param or a number with a unit, e.g. 'tau * dr/dt = ...'", code="E020")


def _scope_names(st: AreaState) -> list[str]:
    names, scope = [], st.scope
    while scope is not None:
        names.extend(scope.values)
        scope = scope.parent
    return names


def _finish(ctx: Context, st: AreaState) -> None:
    a = st.area
    a.states = dict(st.states)
    a.ports = st.ports
    known = set(st.states) | st.assigned
    if a.output not in known and not (a.incomplete and _defines(a.output, st.stmts)):
        if a.output == "r" and st.output_span is None:
            ctx.sink.error(f"area {a.name} has no output: assign 'r' or name one with 'output NAME'",
                           st.decl.name.span, code="E050")
        else:
            ctx.sink.error(unknown(f"variable of {a.name}", a.output, sorted(known)), st.output_span or a.span,
                           code="E050")
    if a.solver == "exponential":
        defs = variables.definitions(a)
        for ode in a.odes:
            ctx.attempt(lambda ode=ode: linear_split(variables.inline(ode.rhs, defs), ode.var))


def _defines(var: str, stmts) -> bool:
    """Whether a statement assigns, integrates or declares `var`."""
    return any(isinstance(s, (S.Assign, S.Ode, S.StateDecl)) and s.var.name == var for s in stmts)
