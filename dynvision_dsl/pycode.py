"""Print a step's fx graph as readable Python, one statement per node, with
comments that point back to the spec lines the code came from."""
from __future__ import annotations

import keyword
import operator

import torch
import torch.fx as fx
import torch.nn.functional as F

from .diagnostics import source_lines
from .functions import TABLE as FUNCTION_TABLE, torch_function
from .ops_autograd import PRINTED as AUTOGRAD_PRINTED
from .passes import PHI1_SMALL, keep_if_silent, noise_sample, phi1

_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.pow: "**"}


_NAMES = {torch_function(f.torch): f.torch for f in FUNCTION_TABLE if f.torch is not None} | {
    torch.lerp: "torch.lerp", torch.flatten: "torch.flatten", torch.unflatten: "torch.unflatten", torch.cat: "torch.cat",
    torch.lt: "torch.lt", torch.gt: "torch.gt", torch.le: "torch.le", torch.ge: "torch.ge",
    torch.eq: "torch.eq", torch.ne: "torch.ne", torch.mean: "torch.mean", torch.sum: "torch.sum",
    torch.amax: "torch.amax",
    F.max_pool2d: "F.max_pool2d", F.avg_pool2d: "F.avg_pool2d", F.adaptive_avg_pool2d: "F.adaptive_avg_pool2d",
    F.interpolate: "F.interpolate", F.conv2d: "F.conv2d",
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
        return repr(a)
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


def print_step(graph: fx.Graph, name: str, source: str) -> str:
    """The step as `def NAME(self, inputs...):` returning a tuple."""
    lines = source_lines(source)
    names: dict[fx.Node, str] = {}
    params = []
    body = []
    last_line = None
    for node in graph.nodes:
        if node.op == "placeholder":
            names[node] = node.name
            params.append(node.name)
            continue
        if node.op == "output":
            outs = ", ".join("None" if o is None else _arg(o, names) for o in node.args[0])
            body.append(f"return ({outs},)" if len(node.args[0]) == 1 else f"return ({outs})")
            continue
        span = node.meta.get("span")
        text = spec_line(lines, span.line) if span is not None and span.line != last_line else None
        if text is not None:
            body.append(f"# line {span.line}: {comment_text(text)}")
            last_line = span.line
        names[node] = node.name
        body.append(f"{node.name} = {_expr(node, names)}")
    head = f"def {name}(self, {', '.join(params)}):"
    return "\n".join([head] + ["    " + b for b in body]) + "\n"
