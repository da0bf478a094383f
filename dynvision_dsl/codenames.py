"""Names in the generated step code, so that it reads like a hand-written model.

The scheme (every name passes through `identifier`, the only way user text becomes a name):
- `V1_r_prev` a state before the step, `V1_r_delayed_3` an output read 3 steps late,
  `image_delayed_3` an input's frame, `x` (or `x_NAME`) the current frame;
- `V1_input` an area's summed input at a port (`V1_input_sum` for a partial sum);
- `V2_from_V1` a connection's term (`V2_fb_from_V4` into port fb), `V1_recurrence` a
  self-connection's, `logits` the readout's (`logits_NAME` with several);
- `V1_r` the new value of a state or variable (`V1_x`);
- values on the way to one of those: `ROLE_WORD` (`V1_r_relu`, `V2_from_V1_max_pool2d`), or
  the module's path for a module call (`V1_recurrence_conv`);
- constants folded from the spec's formulas: `V1_dt_over_tau`, class attributes of the model.
A name is reused for a new value once nothing reads the old one (`V1_r = torch.relu(V1_r)`),
and takes a suffix `_2`, `_3`, ... only where two live values would share it.
"""
from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from .diagnostics import source_lines

_ILLEGAL = re.compile(r"[^0-9a-zA-Z_]+")  # the rule torch.fx applies to node names (ASCII: no NFKC folding)


def identifier(text: str) -> str:
    """`text` as an ASCII Python identifier: other characters become `_`, a leading digit gets `_`."""
    out = _ILLEGAL.sub("_", str(text)) or "_"
    return f"_{out}" if out[0].isdigit() else out


def quantity(area: str, name: str) -> str:
    """`V1_r`: area V1's state, variable or port `name`."""
    return f"{identifier(area)}_{identifier(name)}"


def signal_quantity(signal: str, outputs: dict[str, str]) -> str:
    """`V1_r` for the signal `V1` (its output r), `V1_g` for `V1.g`, `image` for an input."""
    area, _, var = signal.partition(".")
    if not var and area not in outputs:
        return identifier(area)
    return quantity(area, var or outputs[area])


def term(target: str, port: str, source: str, default_port: str = "input") -> str:
    """A connection's term: `V2_from_V1`, `V1_recurrence` (from itself), `V1_fb_from_V4` (a port)."""
    head = identifier(target) if port == default_port else quantity(target, port)
    src = source.partition(".")[0]
    if src == target:
        return f"{head}_recurrence" if source == target else f"{head}_recurrence_{identifier(source.partition('.')[2])}"
    return f"{head}_from_{identifier(source)}"


def logits(name: str, several: bool) -> str:
    return f"logits_{identifier(name)}" if several else "logits"


RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "torch", "nn", "F", "math", "StepOutputs"}


@dataclass
class Namespace:
    """Names bound in one scope: `bind` reuses a name whose value nobody reads any more."""

    taken: set[str] = field(default_factory=lambda: set(RESERVED))
    holder: dict[str, object] = field(default_factory=dict)

    def bind(self, want: str, value: object, free=lambda old: False) -> str:
        """A name for `value`: `want` if unused or `free(old holder)`, else `want_2`, `want_3`, ..."""
        name, n = want, 1
        while name in self.taken and not (name in self.holder and free(self.holder[name])):
            n += 1
            name = f"{want}_{n}"
        self.taken.add(name)
        self.holder[name] = value
        return name


# ------------------------------------------------------- constants with their formula
_WORDS = {"/": "over", "*": "times", "+": "plus", "-": "minus", "**": "pow"}
_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class Constant(float):
    """A number in a step graph that remembers the spec formula it came from (`dt / tau`)
    with its operands' values (`2 / 5`): arithmetic on it keeps both, so the printer can
    emit it as a named constant. Equal to, hashed and printed (repr) as the plain float."""

    formula: str
    values: str
    where: str
    label: str  # the name's part after the area (`r_decay`), or "" to derive it from the formula

    def __new__(cls, value: float, formula: str, values: str | None = None, where: str = "", label: str = ""):
        self = super().__new__(cls, value)
        self.formula, self.values, self.where = formula, values if values is not None else f"{value:g}", where
        self.label = label
        return self

    def __reduce__(self):  # copy and pickle (a deep-copied model's program) keep the formula
        return Constant, (float(self), self.formula, self.values, self.where, self.label)

    def __repr__(self) -> str:
        return float.__repr__(self)

    def named(self) -> bool:
        """Whether it came from a formula or a name, not a bare literal of the spec."""
        return not _LITERAL.fullmatch(self.formula)

    # the lowering's own arithmetic on numbers (dt * 0.5 in a Runge-Kutta stage) keeps the formula
    def __add__(self, o): return combine("+", float(self) + o, self, o)
    def __radd__(self, o): return combine("+", o + float(self), o, self)
    def __sub__(self, o): return combine("-", float(self) - o, self, o)
    def __rsub__(self, o): return combine("-", o - float(self), o, self)
    def __mul__(self, o): return combine("*", float(self) * o, self, o)
    def __rmul__(self, o): return combine("*", o * float(self), o, self)
    def __truediv__(self, o): return combine("/", float(self) / o, self, o)
    def __rtruediv__(self, o): return combine("/", o / float(self), o, self)
    def __neg__(self): return combine("-", -float(self), self)


def _text(x, wrap: bool = True) -> tuple[str, str]:
    """(formula, values) of an operand, parenthesised when it is itself an infix formula."""
    if not isinstance(x, Constant):
        return (format(float(x), "g"),) * 2
    wrap = wrap and any(f" {s} " in x.formula for s in _WORDS)
    return (f"({x.formula})", f"({x.values})") if wrap else (x.formula, x.values)


def combine(symbol: str, value, *args):
    """`value`, the result of `symbol` (an infix operator or a function name) on `args`, as a
    Constant whose formula joins theirs; `value` itself when no operand is a Constant."""
    if not any(isinstance(a, Constant) for a in args) or not isinstance(value, (int, float)):
        return value
    (f, v) = zip(*(_text(a) for a in args))
    where = next((a.where for a in args if isinstance(a, Constant) and a.where), "")
    if symbol in _WORDS and len(args) == 2:
        return Constant(value, f"{f[0]} {symbol} {f[1]}", f"{v[0]} {symbol} {v[1]}", where)
    if symbol == "-":
        return Constant(value, f"-{f[0]}", f"-{v[0]}", where)
    raw = [_text(a, wrap=False) for a in args]
    return Constant(value, f"{symbol}({', '.join(t for t, _ in raw)})", f"{symbol}({', '.join(t for _, t in raw)})", where)


def constant_name(area: str, formula: str) -> str:
    """`V1_dt_over_tau` for `dt / tau` in area V1 (`V1_constant` when the formula is long)."""
    words = re.sub(r"\s*(\*\*|[-+*/])\s*", lambda m: f"_{_WORDS[m[1]]}_", formula)
    words = re.sub(r"_+", "_", identifier(words)).strip("_")
    return f"{identifier(area)}_{words if 0 < len(words) <= 32 else 'constant'}"


@dataclass
class Constants:
    """The named constants of all of a model's steps, by (area, formula, value), in first-use order."""

    taken: set[str] = field(default_factory=set)
    rows: dict[tuple[str, str, float], tuple[str, Constant]] = field(default_factory=dict)

    def name(self, area: str, value: Constant) -> str:
        key = (area, value.formula, float(value))
        if key not in self.rows:
            want = quantity(area, value.label) if value.label else constant_name(area, value.formula)
            self.rows[key] = (Namespace(taken=self.taken).bind(want, value), value)  # never reused: `taken` grows
        return self.rows[key][0]

    def lines(self) -> list[tuple[str, str, str]]:
        """(name, value literal, comment) of each constant."""
        out = []
        for name, value in self.rows.values():
            shown = value.formula if value.values == value.formula else f"{value.formula} = {value.values}"
            out.append((name, float.__repr__(value), f"{shown} ({value.where})" if value.where else shown))
        return out


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def spec_constant(value: float, source: str, span, params: dict, units: dict | None = None) -> float:
    """A spec number as a Constant named after the param whose name the spec writes at `span`
    (`tau`, its value with the param's unit from `units`: `5 ms`), else the plain number: a
    literal stays a literal, and a number the checker made (the -1 of `-r` in the exponential
    solver's split) is no param's."""
    lines = source_lines(source)
    if span is None or span.line != span.end_line or not 0 < span.line <= len(lines):
        return value
    text = lines[span.line - 1][span.col - 1:span.end_col - 1]
    if not _NAME.fullmatch(text) or not isinstance(params.get(text), (int, float)) or isinstance(params[text], bool):
        return value
    unit = (units or {}).get(text)
    return Constant(value, text, f"{value:g} {unit}" if unit else None, where=f"{span.file}:{span.line}")


def folded(target, value: float, args: tuple) -> float:
    """The fold pass's result for `target(*args)`, keeping the operands' formulas (`dt / tau`)."""
    import operator

    from .functions import TABLE, torch_function

    infix = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.pow: "**",
             operator.neg: "-"}
    symbol = infix.get(target) or next((f.name for f in TABLE if f.torch is not None and torch_function(f.torch) is target),
                                       getattr(target, "__name__", "f"))
    return combine(symbol, value, *args)


def output_fields(outputs: list[tuple[str, str]], several: bool) -> list[str]:
    """The StepOutputs field of each value a step returns (lower.Program.outputs): `V1_r` a state
    or variable, `V1` an area's output, `logits` the readout's; no leading `_` (namedtuple)."""
    scope = Namespace(taken=set(keyword.kwlist) | {"count", "index"})
    out = []
    for kind, name in outputs:
        area, _, var = name.partition(".")
        want = (quantity(area, var) if kind in ("state", "var") else logits(name, several) if kind == "logits"
                else identifier(name))
        out.append(scope.bind(want.lstrip("_") or "value", None))
    return out
