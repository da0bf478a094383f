"""Expressions inside equations: names (constants, trainables, states, variables, ports),
arithmetic with time dimensions, math functions from the one table and learnable functions.
An unfed, undeclared name is an error at the name (LANGUAGE.md §9.1)."""
from __future__ import annotations

import math
import operator

from ...diagnostics import did_you_mean, unknown
from ...functions import BY_NAME as FUNCTION_TABLE, MATH_FUNCTIONS
from ...ops import FUNCTIONS, OPERATORS
from .. import ir
from .. import syntax as S
from ..values import NON_FINITE_NAMES, Evaluator, Val, dim_text, err
from . import noise as noise_rules, variables
from .connections import bind_args
from . import reductions as R
from .context import TIME_NAME, AreaState, Context, float32, not_a_number
from .params import param_value
from .templates import lookup_const

Typed = tuple[ir.EqExpr, int]  # an expression and its time dimension
_FN = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "<": "lt", ">": "gt", "<=": "le",
       ">=": "ge", "==": "eq", "!=": "ne"}
_SAME_DIM = ("add", "sub", "lt", "gt", "le", "ge", "eq", "ne")


def expr(ctx: Context, st: AreaState, e: S.Expr, in_ode: bool) -> Typed:
    """The IR of an equation's expression, with its time dimension."""
    if isinstance(e, S.Num):
        v = Evaluator(ctx.src, lookup_const(ctx, st))(e)
        return ir.Const(float32(float(v.v), ctx.text(e), e.span), e.span), v.dim
    if isinstance(e, (S.Str, S.Bool)):
        raise err(f"'{ctx.text(e)}' is not a number; equations compute with numbers", e.span, code="E012")
    if isinstance(e, S.Name):
        return name(ctx, st, e, in_ode)
    if isinstance(e, S.Unary):
        if e.op == "not":
            raise err("'not' belongs in conditions, not in equations", e.span, code="E012")
        x, dim = expr(ctx, st, e.operand, in_ode)
        return (ir.Apply("neg", (x,), e.span) if e.op == "-" else x), dim
    if isinstance(e, S.BinOp):
        return _binop(ctx, st, e, in_ode)
    if isinstance(e, S.Call):
        return _call(ctx, st, e, in_ode)
    raise TypeError(e)


def name(ctx: Context, st: AreaState, e: S.Name, in_ode: bool) -> Typed:
    """What a name in an equation stands for, in the order a reader looks it up."""
    n = e.name
    val = st.scope.get(n)
    if val is not None:
        return _const(ctx, val, e), val.dim
    if n in st.trainable:
        path, dim = st.trainable[n]
        return ir.ParamRef(path, e.span), dim
    if n in st.states:
        return ir.Ref("state", n, e.span), 0
    if n in st.assigned:
        return ir.Ref("var", n, e.span), 0
    if n in ctx.params:
        val = param_value(ctx, n, e.span)
        return _const(ctx, val, e), val.dim
    if in_ode and n in st.pre_names:  # a variable above the ODEs whose own check failed
        return ir.Ref("var", n, e.span), 0
    if any(isinstance(s, S.Assign) and s.var.name == n for s in st.stmts):
        raise variables.read_before_assigned(n, e.span, in_ode, not in_ode and st.in_pre)
    if n in ctx.all_param_names:
        raise err(f"param '{n}' is not defined in this variant", e.span, code="E021")
    if n.lower() in NON_FINITE_NAMES:
        raise not_a_number(n, e.span)
    if n == TIME_NAME:
        return ir.Ref("time", n, e.span), 1
    if n not in st.declared_ports and n not in ctx.fed_into.get(st.name, ()):
        raise _unknown_name(ctx, st, e)
    if n not in st.ports:
        st.ports.append(n)
    return ir.Ref("port", n, e.span), 0


def visible_names(ctx: Context, st: AreaState) -> dict[str, int]:
    """Every name an equation of the area may read, with the line it is declared on (for did-you-mean)."""
    names: dict[str, int] = dict(ctx.all_param_names)
    scope = st.scope
    while scope is not None:
        names.update({k: st.param_spans[k].line if k in st.param_spans else 0 for k in scope.values})
        scope = scope.parent
    names.update({k: st.param_spans.get(k, st.area.span).line for k in st.trainable})
    names.update({k: sp.line for k, sp in st.state_spans.items()})
    names.update({s.var.name: s.var.span.line for s in st.stmts if isinstance(s, (S.Assign, S.Ode))})
    names.update({k: sp.line for k, sp in st.declared_ports.items()})
    names.update({k: 0 for k in ctx.fed_ports | ctx.fed_into.get(st.name, set())})
    return names


def _unknown_name(ctx: Context, st: AreaState, e: S.Name):
    """An unfed name that nothing declares: an error at the name, with a did-you-mean (§9.1)."""
    guess = did_you_mean(e.name, visible_names(ctx, st), e.span.line)
    if guess is not None:
        return err(f"unknown name '{e.name}' (did you mean '{guess}'?)", e.span, code="E052")
    return err(f"unknown name '{e.name}': no param, state, variable or fed port of {st.name} has this name",
               e.span, f"feed it with a connection '... -> {st.name}.{e.name}', or declare it as an optional "
               f"port with 'port {e.name}' in the area", code="E052")


def _const(ctx: Context, val: Val, e) -> ir.Const:
    if not val.is_number or isinstance(val.v, bool):
        raise err(f"'{ctx.text(e)}' is {val.describe()}, not a number; equations compute with numbers",
                  e.span, code="E012")
    return ir.Const(float32(float(val.v), ctx.text(e), e.span), e.span)


def _binop(ctx: Context, st: AreaState, e: S.BinOp, in_ode: bool) -> Typed:
    spine = [e]  # a + b + c + ...: left operands in a loop, so a long sum needs no recursion
    while True:
        if spine[-1].op in ("and", "or"):
            raise err(f"'{spine[-1].op}' belongs in conditions, not in equations", spine[-1].span, code="E012")
        if not isinstance(spine[-1].left, S.BinOp):
            break
        spine.append(spine[-1].left)
    value = expr(ctx, st, spine[-1].left, in_ode)
    for node in reversed(spine):
        value = _combine(ctx, node, value, expr(ctx, st, node.right, in_ode))
    return value


def _combine(ctx: Context, e: S.BinOp, left: Typed, right: Typed) -> Typed:
    (a, da), (b, db) = left, right
    fn = _FN[e.op]
    if fn in _SAME_DIM and da != db:
        _dimension_mismatch(ctx, e, fn, da, db)
    dim = {"add": da, "sub": da, "mul": da + db, "div": da - db}.get(fn, 0)
    if fn == "pow":
        dim = _power_dim(ctx, e, b, da, db)
    _check_constant_arithmetic(fn, a, b, e, ctx.text(e))
    return ir.Apply(fn, (a, b), e.span), dim


def _dimension_mismatch(ctx: Context, e: S.BinOp, fn: str, da: int, db: int):
    verb = {"add": "add", "sub": "subtract"}.get(fn, "compare")
    right_bad = db != 0
    culprit, cdim, odim = (e.right, db, da) if right_bad else (e.left, da, db)
    other = e.left if right_bad else e.right
    target = "a dimensionless value" if odim == 0 else f"'{ctx.text(other)}' ({dim_text(odim)})"
    prep = {"add": "to", "subtract": "from"}.get(verb, "with")
    raise err(f"cannot {verb} '{ctx.text(culprit)}' ({dim_text(cdim)}) {prep} {target}", culprit.span,
              "give both sides the same unit", code="E015")


def _power_dim(ctx: Context, e: S.BinOp, b: ir.EqExpr, da: int, db: int) -> int:
    if db != 0:
        raise err(f"an exponent must be dimensionless, but '{ctx.text(e.right)}' is {dim_text(db)}",
                  e.right.span, code="E016")
    if da == 0:
        return 0
    if not isinstance(b, ir.Const) or b.value != int(b.value):
        raise err(f"'{ctx.text(e.left)}' has a unit; raise it only to a whole constant power", e.left.span,
                  code="E016")
    return int(da * b.value)


def _call(ctx: Context, st: AreaState, e: S.Call, in_ode: bool) -> Typed:
    n = e.func.name
    if R.is_reduction(e):
        return R.reduction(e, lambda x: expr(ctx, st, x, in_ode))
    if n in MATH_FUNCTIONS:
        return _math(ctx, st, e, in_ode)
    if n in FUNCTIONS:
        return _learnable(ctx, st, e, in_ode)
    if n == noise_rules.NAME:
        return noise_rules.call(e)
    cands = list(MATH_FUNCTIONS) + list(FUNCTIONS) + [noise_rules.NAME, "mean", "sum"]
    hint = "operators like conv belong on connections" if n in OPERATORS else None
    raise err(unknown("function", n, cands), e.func.span, hint, code="E018")


def _math(ctx: Context, st: AreaState, e: S.Call, in_ode: bool) -> Typed:
    """A function of the table: arity and the dimension rule checked, its IR built."""
    fdef = FUNCTION_TABLE[e.func.name]
    n = fdef.name
    if e.alias is not None:
        raise err(f"{n}() has no parameters to name with 'as'", e.alias.span, code="E019")
    if e.kwargs:
        raise err(f"{n}() takes no keyword arguments", e.kwargs[0].name.span, code="E019")
    if len(e.args) != fdef.arity:
        raise err(f"{n}() takes {fdef.arity} argument{'s' * (fdef.arity != 1)}, got {len(e.args)}",
                  e.func.span, code="E019")
    parts = [expr(ctx, st, a, in_ode) for a in e.args]
    dims = [d for _, d in parts]
    if fdef.dim == "free" and dims[0] != 0:
        raise err(f"{n}() needs a dimensionless argument, but '{ctx.text(e.args[0])}' is "
                  f"{dim_text(dims[0])}", e.args[0].span, code="E017")
    if fdef.dim == "equal" and len(set(dims)) > 1:
        odd = next(a for a, d in zip(e.args, dims) if d != dims[0])
        raise err(f"{n}() needs arguments of one dimension, but '{ctx.text(odd)}' is {dim_text(dims[e.args.index(odd)])}",
                  odd.span, code="E017")
    if fdef.dim == "half" and dims[0] % 2:
        raise err(f"{n} of {dim_text(dims[0])} has no whole dimension", e.args[0].span, code="E016")
    dim = {"zero": 0, "half": dims[0] // 2}.get(fdef.dim, dims[0])
    return ir.Apply(n, tuple(p for p, _ in parts), e.span), dim


def _check_groups(st: AreaState, groups: int, span) -> None:
    c = st.area.channels
    if groups < 1:
        raise err(f"groupnorm needs at least 1 group, got {groups}", span, code="E051")
    if c % groups:
        raise err(f"groupnorm: {groups} groups do not divide the {c} channels of {st.name}", span,
                  f"use a divisor of {c}, e.g. {_divisor_below(c, groups)}", code="E051")


def _learnable(ctx: Context, st: AreaState, e: S.Call, in_ode: bool) -> Typed:
    fdef = FUNCTIONS[e.func.name]
    args = list(e.args)
    inner = None
    if fdef.takes_input:
        if not args:
            raise err(f"{fdef.name}() needs the value to normalise as its first argument", e.func.span,
                      code="E040")
        inner, _ = expr(ctx, st, args.pop(0), in_ode)
    bound = bind_args(ctx, fdef.args, tuple(args), e.kwargs, fdef.name, e.func.span, lookup_const(ctx, st))
    bound = {a.name: a.default for a in fdef.args if not a.required} | bound
    if fdef.name == "groupnorm":
        _check_groups(st, bound["groups"], args[0].span if args else e.kwargs[0].value.span)
    n = st.fn_count[fdef.name] = st.fn_count.get(fdef.name, 0) + 1
    path = e.alias.name if e.alias else f"{st.name}.{fdef.name}" + (f"_{n}" if n > 1 else "")
    opts = tuple(sorted(bound.items()))
    st.area.functions[path] = fdef.name
    ctx.modules.setdefault(path, e.alias.span if e.alias else e.func.span)
    return ir.Apply(fdef.name, (inner,) if inner is not None else (), e.span, path, opts), 0


def _divisor_below(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, max(limit, 1)) + 1) if n % d == 0)


_ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "pow": operator.pow}


def _constant(x: ir.EqExpr) -> float | None:
    """The value of a constant or a negated constant, else None."""
    if isinstance(x, ir.Apply) and x.fn == "neg" and len(x.args) == 1:
        inner = _constant(x.args[0])
        return None if inner is None else -inner
    return x.value if isinstance(x, ir.Const) else None


def _check_constant_arithmetic(fn: str, a: ir.EqExpr, b: ir.EqExpr, e: S.BinOp, text: str) -> None:
    """Constant arithmetic in an equation must stay finite in float32 (it would be inf or nan at run time)."""
    if fn == "div" and _constant(b) == 0:
        raise err(f"division by zero in '{text}'", e.right.span, code="E013")
    x, y = _constant(a), _constant(b)
    if x is None or y is None or fn not in _ARITHMETIC:
        return
    if fn == "pow" and (x == 0 and y < 0 or x < 0 and y != int(y)):
        raise err(f"'{text}' has no finite real value", e.span, code="E014")
    try:
        value = _ARITHMETIC[fn](x, y)
    except OverflowError:
        value = math.inf
    float32(value, text, e.span)
