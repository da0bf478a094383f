"""The params of a spec as a table (`dynv params`): each top-level param with its
default, its value after `--set`, its kind (time, number, bool, string, choice) and
the comment beside it in the spec."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

from .frontend import syntax as S
from .frontend.check import param_values
from .diagnostics import Diagnostic, source_lines
from .ops import FUNCTIONS, OPERATORS
from .frontend.parse import parse
from .frontend.values import Val, dim_text


@dataclass(frozen=True)
class ParamInfo:
    """One param: values as `--set` would take them (None: not in that variant or in error)."""

    name: str
    line: int
    default: str | None
    value: str | None  # after the overrides; equal to `default` without them
    kind: str  # time | number | bool | string | choice | a dimension ('1/time, 1/ms')
    choices: tuple[str, ...]
    comment: str
    set: bool  # an override names it


def param_table(source: str, params: dict | None = None, file: str = "<string>"
                ) -> tuple[list[ParamInfo], list[Diagnostic]]:
    """Every top-level param of a spec, in source order, and the diagnostics of checking it
    with `params` (a syntax error leaves the table empty)."""
    module = parse(source, file)
    defaults, _ = param_values(module)
    values, diags = param_values(module, params) if params else (defaults, [])
    choices = _choices(module)
    lines = source_lines(module.source)  # BOM stripped; lines counted as the parser counts them
    rows = []
    for name in dict.fromkeys([*defaults, *values]):
        decl, default = defaults.get(name) or values[name]
        value = values.get(name, (decl, None))[1]
        known = default if default is not None else value
        options = choices.get(name, [])
        if options and known is not None and isinstance(known.v, str) and known.v not in options:
            options = [known.v, *options]
        rows.append(ParamInfo(name, decl.span.line, _text(default), _text(value), _kind(known, bool(options)),
                              tuple(options), _comment(lines[decl.span.line - 1]), name in (params or {})))
    return sorted(rows, key=lambda r: r.line), diags


def _text(val: Val | None) -> str | None:
    """A value as `--set` takes it: `5 ms`, `64`, `true`, `full`."""
    if val is None:
        return None
    return val.v if isinstance(val.v, str) else val.describe()


def _kind(val: Val | None, has_choices: bool) -> str:
    if val is None:
        return "?"
    if isinstance(val.v, bool):
        return "bool"
    if isinstance(val.v, str):
        return "choice" if has_choices else "string"
    return {0: "number", 1: "time"}.get(val.dim, dim_text(val.dim))


def _comment(line: str) -> str:
    """The `# ...` text of a source line (a '#' inside a string does not start one)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[i + 1:].strip()
    return ""


def _choices(module: S.Module) -> dict[str, list[str]]:
    """Per param the strings it is compared with (`recurrence == "full"`) or the choices of the
    operator argument it is passed to (`lateral(recurrence)`), in order of appearance."""
    out: dict[str, list[str]] = {}
    for node in _nodes(module.decls):
        pairs = []
        if isinstance(node, S.BinOp) and node.op in ("==", "!="):
            for a, b in ((node.left, node.right), (node.right, node.left)):
                if isinstance(a, S.Name) and isinstance(b, S.Str):
                    pairs.append((a.name, [b.value]))
        elif isinstance(node, (S.Op, S.Call)):
            pairs = _enum_args(node)
        for name, values in pairs:
            out.setdefault(name, [])
            out[name] += [v for v in values if v not in out[name]]
    return out


def _enum_args(node: S.Op | S.Call) -> list[tuple[str, list[str]]]:
    """(param name, choices) for each enum argument of an operator given as a bare param name."""
    name = node.name.name if isinstance(node, S.Op) else node.func.name
    spec = OPERATORS.get(name) or FUNCTIONS.get(name)
    if spec is None:
        return []
    args = [(a, e) for a, e in zip(spec.args, node.args)]
    by_name = {a.name: a for a in spec.args}
    args += [(by_name[k.name.name], k.value) for k in node.kwargs if k.name.name in by_name]
    return [(e.name, list(a.choices)) for a, e in args if a.kind == "enum" and isinstance(e, S.Name)]


def _nodes(root: Any):
    """Every syntax node under `root`, iteratively (deeply nested specs do not recurse)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, (tuple, list)):
            stack.extend(reversed(node))
        elif is_dataclass(node) and not isinstance(node, type):
            yield node
            stack.extend(reversed([getattr(node, f.name) for f in fields(node) if f.name != "span"]))


def format_table(rows: list[ParamInfo]) -> str:
    """An aligned text table; the `--set` column only when an override is given."""
    overridden = any(r.set for r in rows)
    head = ["name", "default"] + (["--set"] if overridden else []) + ["kind", "comment"]
    body = []
    for r in rows:
        cells = [r.name, _cell(r.default)] + ([(r.value or "?") if r.set else ""] if overridden else [])
        body.append(cells + [r.kind, r.comment])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    out = []
    for i, line in enumerate([head, *body]):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    listed = [r for r in rows if r.choices]
    if listed:
        out += ["", "choices:"] + [f"  {r.name}: {', '.join(r.choices)}" for r in listed]
    return "\n".join(out)


def _cell(text: str | None) -> str:
    return "-" if text is None else text if text != "" else '""'


def to_json(rows: list[ParamInfo]) -> str:
    return json.dumps([{**asdict(r), "choices": list(r.choices)} for r in rows], indent=2)
