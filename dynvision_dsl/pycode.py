"""Print a step's fx graph as readable Python, one statement per node, with
comments that point back to the spec lines the code came from."""
from __future__ import annotations

import keyword
import operator

import torch
import torch.fx as fx
import torch.nn.functional as F

from . import codenames
from .diagnostics import source_lines
from .functions import TABLE as FUNCTION_TABLE, torch_function
from .ops_autograd import PRINTED as AUTOGRAD_PRINTED, WORDS as AUTOGRAD_WORDS
from .passes import PHI1_SMALL, keep_if_silent, noise_sample, phi1

_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.pow: "**"}


_NAMES = {torch_function(f.torch): f.torch for f in FUNCTION_TABLE if f.torch is not None} | {
    torch.lerp: "torch.lerp", torch.flatten: "torch.flatten", torch.unflatten: "torch.unflatten", torch.cat: "torch.cat",
    torch.lt: "torch.lt", torch.gt: "torch.gt", torch.le: "torch.le", torch.ge: "torch.ge",
    torch.eq: "torch.eq", torch.ne: "torch.ne", torch.mean: "torch.mean", torch.sum: "torch.sum",
    torch.amax: "torch.amax",
    F.max_pool2d: "F.max_pool2d", F.avg_pool2d: "F.avg_pool2d", F.adaptive_avg_pool2d: "F.adaptive_avg_pool2d",
    F.interpolate: "F.interpolate", F.conv2d: "F.conv2d", F.linear: "F.linear",
} | AUTOGRAD_PRINTED


# ------------------------------------------------ user text in generated code
# Every string that came from a user (file names, model names, source lines, paths)
# reaches the generated module only through these three: the result is printable
# ASCII in which backslashes, quotes and every other character are explicit escapes,
# so it can neither end the comment or string it sits in nor break the module.
def comment_text(text: str) -> str:
    """`text` for a `#` comment: one line of printable ASCII (NUL, CR, U+2028, ... escaped)."""
    return str(text).encode("unicode_escape").decode("ascii")  # str(): a file given as a Path


def docstring_text(text: str) -> str:
    """`text` for the inside of a triple-quoted docstring, whose value is `text` again except
    that a lone surrogate (an undecodable file-name byte) stays written as `\\udcff`: a
    class docstring must encode as UTF-8."""
    return _quoted(str(text).encode("utf-8", "backslashreplace").decode("utf-8"))


def string_literal(text: str) -> str:
    """A double-quoted Python literal whose value is exactly `text`."""
    return f'"{_quoted(text)}"'


def _quoted(text: str) -> str:
    return comment_text(text).replace('"', '\\"')


def spec_line(lines: tuple[str, ...], line: int) -> str | None:
    """Line `line` (1-based) of `source_lines`, stripped, or None if out of range."""
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def attr_path(path: str, root: str = "self") -> str:
    """`self.V1.conv`, or getattr for segments that are not identifiers (`classifier.2`)."""
    text = root
    for seg in path.split("."):
        if seg.isascii() and seg.isidentifier() and not keyword.iskeyword(seg):
            text += f".{seg}"
        else:
            text = f"getattr({text}, {string_literal(seg)})"
    return text


def _arg(a, names: dict) -> str:
    if isinstance(a, fx.Node):
        return names[a]
    if isinstance(a, tuple):
        inner = ", ".join(_arg(x, names) for x in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    if isinstance(a, float):
        return names.number(a) if isinstance(names, _Names) else repr(a)
    return repr(a)


def _expr(node: fx.Node, names: dict) -> str:
    args = [_arg(a, names) for a in node.args]
    if node.op == "call_module":
        return f"{attr_path(node.target)}({', '.join(args)})"
    if node.op == "get_attr":
        return attr_path(node.target)
    if node.op == "call_method":
        return f"{args[0]}.{node.target}({', '.join(args[1:])})"
    target = node.target
    if target in _INFIX:
        return f"{args[0]} {_INFIX[target]} {args[1]}"
    if target is operator.neg:
        return f"-{args[0]}"
    if target is F.interpolate:
        return f"F.interpolate({args[0]}, size={args[1]}, mode=\"nearest\")"
    if target is torch.clamp and len(args) == 3 and node.args[1] is None:
        return f"torch.clamp({args[0]}, max={args[2]})"
    if target is noise_sample:
        like, shape = args[0], [_arg(d, names) for d in node.args[1]]
        return f"torch.randn(({like}.size(0), {', '.join(shape)}), dtype={like}.dtype, device={like}.device)"
    if target is phi1:
        z = args[0]
        return (f"torch.where({z}.abs() < {PHI1_SMALL!r}, 1.0 + 0.5 * {z}, "
                f"torch.expm1({z}) / torch.where({z}.abs() < {PHI1_SMALL!r}, 1.0, {z}))")
    if target is keep_if_silent:
        raise ValueError("keep_if_silent must be resolved by the drop_silent pass before printing")
    return f"{_NAMES[target]}({', '.join(args)})"


class _Names(dict):
    """The names of a step's values by node, and how its numbers print (`self.V1_dt_over_tau`)."""

    def __init__(self, number):
        super().__init__()
        self.number = number


_WORDS = {operator.add: "sum", operator.sub: "diff", operator.mul: "prod", operator.truediv: "ratio",
          operator.pow: "pow", operator.neg: "neg", noise_sample: "noise", phi1: "phi1"} | AUTOGRAD_WORDS


def _word(node: fx.Node) -> str:
    """What a node computes, in a word, for the name of a value on the way to a quantity."""
    if node.op in ("call_module", "get_attr"):
        return codenames.identifier(node.target)
    if node.op == "call_method":
        return node.target
    return _WORDS.get(node.target) or _NAMES.get(node.target, "value").rsplit(".", 1)[-1]


def _wanted(node: fx.Node) -> str:
    """The name the scheme of codenames gives a node: its role's when it is the role's value
    at the end of its statement, else the role's and a word (a module call: the module's path)."""
    role = node.meta.get("role")
    if node.op == "placeholder":
        return role[1] if role else codenames.identifier(node.target)
    if role is None:
        return f"step_{_word(node)}"
    span = node.meta.get("span")
    if any(u.meta.get("role") == role and u.meta.get("span") == span for u in node.users):
        return _word(node) if node.op in ("call_module", "get_attr") else f"{role[1]}_{_word(node)}"
    return role[1]


def _comment(node: fx.Node, lines: tuple[str, ...]) -> tuple | None:
    """(key, `# specs/x.dyn:31 (V1): <the spec line>`) for a node with a span, else None."""
    span, role = node.meta.get("span"), node.meta.get("role")
    text = spec_line(lines, span.line) if span is not None else None
    if text is None:
        return None
    where = f"{span.file}:{span.line}" + (f" ({role[0]})" if role else "")
    return (span.file, span.line, role and role[0]), f"# {comment_text(where)}: {comment_text(text)}"


def _return(node: fx.Node, names: dict, fields: list[str], width: int = 104) -> list[str]:
    """`return StepOutputs(V1_r=V1_r, ...)`, wrapped: one named tuple for every variant."""
    items = [f"{f}={'None' if o is None else _arg(o, names)}" for f, o in zip(fields, node.args[0])]
    rows, row = [], "return StepOutputs("
    for i, item in enumerate(items):
        piece = item + (", " if i + 1 < len(items) else ")")
        if len(row) + len(piece) > width and row.strip() != "return StepOutputs(":
            rows.append(row.rstrip())
            row = "    "
        row += piece
    return rows + [row if items else "return StepOutputs()"]


def print_step(graph: fx.Graph, name: str, model, constants: codenames.Constants, fields: list[str]) -> str:
    """The step as `def NAME(self, inputs...):` returning a StepOutputs; values are named after
    their area and quantity, named numbers are the model's constants (codenames)."""
    lines = source_lines(model.source)
    order = {n: i for i, n in enumerate(graph.nodes)}
    scope = codenames.Namespace()
    params, body, last = [], [], None
    names = _Names(repr)
    for node in graph.nodes:
        if node.op == "placeholder":
            names[node] = scope.bind(_wanted(node), node)
            params.append(names[node])
            continue
        if node.op == "output":
            body.extend(_return(node, names, fields))
            continue
        comment = _comment(node, lines)
        if comment is not None and comment[0] != last:
            body.append(comment[1])
            last = comment[0]
        area = (node.meta.get("role") or ("step",))[0].split(" ")[-1]
        names.number = lambda x, area=area: f"self.{constants.name(area, x)}" if isinstance(
            x, codenames.Constant) and x.named() else repr(x)
        expr = _expr(node, names)
        names[node] = scope.bind(_wanted(node), node, free=lambda old, i=order[node]: all(order[u] <= i for u in old.users))
        note = node.meta.get("note")  # what a rewritten op computes (lower_layout: the taps a conv reads)
        body.append(f"{names[node]} = {expr}" + (f"  # {comment_text(note)}" if note else ""))
    head = f"def {name}(self, {', '.join(params)}):"
    return "\n".join([head] + ["    " + b for b in body]) + "\n"
