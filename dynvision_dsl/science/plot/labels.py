"""Texts of the connectivity drawing: compact canvas labels (`conv 7/2`) and the
full tooltips (pipeline, modules, shapes, delays, first presence)."""
from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np

from ...ops import OPERATORS, OpError, resolve_defaults
from ...frontend.values import fmt_number

KINDS = ("feedforward", "skip", "feedback", "lateral", "readout")
# one palette for every picture (matplotlib, Graphviz, timeline)
COLORS = {"feedforward": "#000000", "skip": "#1f5fd6", "feedback": "#d62728", "lateral": "#808080",
          "readout": "#2e7d32"}
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}
_ROLE_ORDER = {"input": 0, "area": 1, "group": 1, "readout": 2}
LEGEND_NOTE = "conv 7/2 = kernel 7, stride 2 (other arguments, modules and shapes: hover in SVG/HTML)"


# ------------------------------------------------------------- ordering
def natural_key(name: Any) -> tuple:
    parts = re.split(r"(\d+)", str(name))
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), str(name)


def role(data: dict) -> str:
    r = data.get("role", "area")
    return r if r in _ROLE_ORDER else "area"


def kind(d: dict) -> str:
    k = d.get("kind") or "feedforward"
    return k if k in _KIND_ORDER else "feedforward"


def rank(data: dict) -> int:
    try:
        return int(data.get("rank", 0) or 0)
    except (TypeError, ValueError):
        return 0


def sorted_nodes(graph) -> list:
    return sorted(graph.nodes, key=lambda n: (rank(graph.nodes[n]), _ROLE_ORDER[role(graph.nodes[n])],
                                              natural_key(n)))


def sorted_edges(graph) -> list[tuple]:
    """(u, v, key, data) in a stable order: by rank, kind, names, index."""
    def key(e):
        u, v, k, d = e
        return (rank(graph.nodes[u]), rank(graph.nodes[v]), _KIND_ORDER[kind(d)], natural_key(u),
                natural_key(v), str(d.get("index", k)), str(k))
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else (
        (u, v, 0, d) for u, v, d in graph.edges(data=True))
    return sorted(edges, key=key)


# ------------------------------------------------------- pipeline parsing
def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and brackets."""
    out, depth, cur, i = [], 0, [], 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            out.append("".join(cur))
            cur, i = [], i + len(sep)
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_number(v)
    return str(v)


def parse_op(text: str) -> tuple[str, list[str], dict[str, Any]] | None:
    """`conv(k=3, stride=2)` -> ('conv', [], {'k': 3, 'stride': 2}); None if not a call."""
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", text, re.S)
    if not m:
        return None
    positional, given = [], {}
    for part in split_top(m.group(2) or "", ","):
        key, eq, value = part.partition("=")
        if eq and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", key):
            given[key.strip()] = _literal(value.strip())
        else:
            positional.append(part)
    return m.group(1), positional, given


def _non_default(name: str, given: dict) -> dict[str, Any]:
    """The arguments of a known operator that differ from their resolved default."""
    opdef = OPERATORS[name]
    out = {}
    for arg in opdef.args:
        if arg.name not in given:
            continue
        value = given[arg.name]
        if arg.required:
            out[arg.name] = value
            continue
        others = {k: v for k, v in given.items() if k != arg.name}
        try:
            default = resolve_defaults(opdef, others).get(arg.name, arg.default)
        except (OpError, TypeError, KeyError):
            default = arg.default
        if value != default or type(value) is not type(default) and not (
                isinstance(value, (int, float)) and isinstance(default, (int, float))):
            out[arg.name] = value
    known = {a.name for a in opdef.args}
    out.update({k: v for k, v in sorted(given.items()) if k not in known})
    return out


def short_op(text: str) -> str:
    """One operator as the DSL would spell it: required arguments positional,
    optional ones only where they differ from their (resolved) default."""
    parsed = parse_op(text)
    if parsed is None:
        return text.strip()
    name, positional, given = parsed
    if not positional and not given:
        return name
    if name not in OPERATORS:
        return f"{name}({', '.join(positional + [f'{k}={show(v)}' for k, v in given.items()])})"
    required = {a.name for a in OPERATORS[name].args if a.required}
    shown = list(positional) + [show(v) if k in required else f"{k}={show(v)}"
                                for k, v in _non_default(name, given).items()]
    return f"{name}({', '.join(shown)})" if shown else name


def canvas_op(text: str) -> str:
    """One operator for the canvas: name, kernel/stride (`conv 7/2`, `maxpool 3/2`),
    the count of `linear`, the kind of `lateral`; the rest goes to the tooltip."""
    parsed = parse_op(text)
    if parsed is None:
        return text.strip()
    name, positional, given = parsed
    if name not in OPERATORS:
        return short_op(text)
    args = _non_default(name, given)
    if "k" in args and name in ("conv", "depthwise", "maxpool", "avgpool", "local"):
        stride = args.get("stride")
        return f"{name} {show(args['k'])}" + (f"/{show(stride)}" if stride not in (None, 1, args["k"]) else "")
    if name == "lateral":
        return " ".join(["lateral", show(args.get("kind", ""))] + ([f"k={show(args['k'])}"] if "k" in args else []))
    if name == "avgpool" and "out" in args:
        return f"avgpool → {show(args['out'])}"
    if name in ("linear", "dropout") and args:
        return f"{name} {show(args.get('n', args.get('p', '')))}"
    return name


def canvas_pipeline(pipeline: str, width: int = 22) -> list[str]:
    """A pipeline in canvas form, operators joined by ` | ` into lines of about
    `width` characters; nothing is elided (the full text is in the tooltip)."""
    lines: list[str] = []
    for op in (canvas_op(p) for p in split_top(pipeline or "", "|")):
        if lines and len(lines[-1]) + 3 + len(op) <= width:
            lines[-1] += " | " + op
        else:
            lines.append(op)
    return lines


def short_pipeline(pipeline: str, width: int = 30, max_lines: int = 3) -> list[str]:
    """A pipeline with defaults dropped (`conv(bias=True, ..., k=3, padding=1)`
    reads `conv(3)`), operators joined by ` | ` into lines of about `width`
    characters, at most `max_lines` lines (the rest elided with `…`)."""
    ops = [short_op(p) for p in split_top(pipeline or "", "|")]
    lines: list[str] = []
    for op in ops:
        if lines and len(lines[-1]) + 3 + len(op) <= width:
            lines[-1] += " | " + op
        else:
            lines.append(op)
    lines = [ln if len(ln) <= width + 12 else ln[: width + 11] + "…" for ln in lines]
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"… (+{len(lines) - max_lines + 1})"]
    return lines


# ------------------------------------------------------------------ texts
def delay_text(d: dict) -> str | None:
    delay = d.get("delay_ms") or 0.0
    return f"{fmt_number(float(delay))} ms" if delay > 0 else None


def port_of(d: dict) -> str:
    return d.get("port") or "input"


def edge_lines(d: dict) -> list[str]:
    """The canvas label of a connection: compact pipeline, delay, `→ port`."""
    if d.get("merged"):
        lines = list(d.get("merged_label") or [f"{d['merged']} connections"])
    else:
        lines = canvas_pipeline(str(d.get("pipeline") or ""))
    extra = [t for t in (delay_text(d), f"→ {port_of(d)}" if port_of(d) != "input" else None) if t]
    if extra and lines and len(lines[-1]) + len(" · ".join(extra)) < 24:
        lines[-1] += " · " + " · ".join(extra)
    elif extra:
        lines.append(" · ".join(extra))
    return lines


def shape_text(shape) -> str | None:
    if shape is None:
        return None
    return "[" + ", ".join(str(int(s)) if isinstance(s, (int, np.integer)) else str(s) for s in shape) + "]"


def lateral_line(d: dict) -> str:
    """A self-connection as one line inside its area's box: `↻ full · 6 ms`."""
    text = " | ".join(canvas_pipeline(str(d.get("pipeline") or ""), width=200))
    text = text[len("lateral "):] if text.startswith("lateral ") else text
    delay = delay_text(d)
    return "↻ " + text + (f" · {delay}" if delay else "") + (f" → {port_of(d)}" if port_of(d) != "input" else "")


def loop_lines(lines: list[str]) -> list[str]:
    """Lateral lines of one box, each once, with `(×n)` where n connections read alike."""
    return [s + (f" (×{lines.count(s)})" if lines.count(s) > 1 else "") for i, s in enumerate(lines)
            if s not in lines[:i]]


def node_lines(name: str, data: dict) -> list[str]:
    lines = [str(name)]
    if data.get("members"):
        lines.append(f"{len(data['members'])} areas")
    shape = shape_text(data.get("shape"))
    if shape:
        lines.append(shape)
    if data.get("tau"):
        lines.append(f"τ = {data['tau']}")
    return lines


def _when(step, dt) -> str:
    if step is None:
        return "never within the run"
    return f"step {step}" + (f" ({fmt_number(step * float(dt))} ms)" if dt else "")


def node_tooltip(name: str, data: dict, dt=None) -> str:
    """Everything about an area for its tooltip."""
    out = [f"{name} ({role(data)})"]
    if data.get("shape") is not None:
        out.append(f"shape {shape_text(data['shape'])}")
    for key in ("template", "solver", "tau"):
        if data.get(key):
            out.append(f"{key} {data[key]}")
    out += [f"  {eq}" for eq in data.get("equations") or []]
    if data.get("members"):
        out.append("areas: " + ", ".join(data["members"]))
        out += [f"  {line}" for line in data.get("internal") or []]
    if "present_from" in data:
        out.append("first present: " + _when(data["present_from"], dt))
    return "\n".join(out)


def edge_tooltip(u, v, d: dict, dt=None) -> str:
    """Everything about a connection for its tooltip: full pipeline, modules with shapes, delay, port."""
    if d.get("merged"):
        return f"{u} → {v}: {d['merged']} connections\n" + "\n".join(d.get("members_text") or [])
    out = [f"{u} → {v}" + (f".{port_of(d)}" if port_of(d) != "input" else "") + f" ({kind(d)})",
           f"pipeline: {d.get('pipeline') or 'identity'}"]
    for op in d.get("ops") or []:
        path = getattr(op, "path", None)
        shapes = f" {shape_text(op.in_shape)} → {shape_text(op.out_shape)}" if getattr(op, "in_shape", None) else ""
        if path:
            out.append(f"  module {path}{shapes}")
    delay = delay_text(d)
    steps = int(d.get("delay_steps") or 0)
    out.append("delay " + (f"{delay} ({steps} step{'s' if steps != 1 else ''})" if delay else "0 (same step)"))
    if "present_from" in d:
        out.append("first present: " + _when(d["present_from"], dt))
    return "\n".join(out)
