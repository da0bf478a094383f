"""The operator library: what each connection operator and learnable function
takes, what shape it makes, which modules it owns and how it is lowered.

One table serves every stage: `check` validates arguments and infers shapes,
`lower` builds modules and graph nodes, `emit` prints the same constructors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

Shape = tuple  # (C, H, W) for maps, (N,) for vectors

MODULE_FREE = frozenset({"maxpool", "avgpool", "resize", "flatten", "identity"})  # own no parameters
RECURRENCE_KINDS = ("none", "self", "full", "depthpointwise", "pointdepthwise", "local", "localdepthwise")
BIAS_MODES = ("spatial", "channel", "scalar")


class OpError(Exception):
    """A bad argument or an impossible shape; `arg` names the culprit if known."""

    def __init__(self, message: str, arg: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint = message, arg, hint


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str  # int | float | bool | enum | intpair
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class OpSpec:
    """One resolved operator of a pipeline."""

    kind: str
    args: tuple[tuple[str, Any], ...]
    path: str
    in_shape: Shape
    out_shape: Shape
    span: Any = None
    name_span: Any = None  # the token that names its module: the `as` name, else the operator's name

    @property
    def a(self) -> dict[str, Any]:
        return dict(self.args)


@dataclass(frozen=True)
class OpDef:
    name: str
    args: tuple[Arg, ...]
    shape: Callable[[dict, Shape, Shape | None], Shape]
    modules: Callable[[dict, Shape, Shape], list[tuple[str, str]]] = lambda a, i, o: []
    doc: str = ""
    # float32 values its modules hold (weights, biases, index buffers): the memory bound's estimate
    weights: Callable[[dict, Shape, Shape], int] = lambda a, i, o: 0


# ------------------------------------------------------------------ helpers
def _need_map(shape: Shape, op: str) -> None:
    if len(shape) != 3:
        raise OpError(f"{op} needs a [C, H, W] map, but receives a vector of {shape[0]}",
                      hint="put it before 'flatten', 'linear' or the global 'avgpool'")


def _out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _spatial(shape: Shape, k: int, s: int, p: int, op: str, d: int = 1) -> tuple[int, int]:
    h, w = _out(shape[1], k, s, p, d), _out(shape[2], k, s, p, d)
    if h < 1 or w < 1:
        raise OpError(f"{op} with kernel {k}, stride {s} and padding {p} leaves no output from "
                      f"a [{shape[1]}, {shape[2]}] map", hint="use a smaller kernel or stride, or more padding")
    return h, w


def _target_channels(shape: Shape, target: Shape | None) -> int:
    return target[0] if target is not None else shape[0]


def conv_ctor(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1,
              dilation: int = 1, bias: bool = True, weightnorm: bool = False) -> str:
    text = f"nn.Conv2d({cin}, {cout}, kernel_size={k}"
    if stride != 1:
        text += f", stride={stride}"
    if padding:
        text += f", padding={padding}"
    if dilation != 1:
        text += f", dilation={dilation}"
    if groups != 1:
        text += f", groups={groups}"
    if not bias:
        text += ", bias=False"
    text += ")"
    if weightnorm:
        text = f"nn.utils.parametrizations.weight_norm({text})"
    return text


def local_kernel(channels: int) -> int:
    """DynVision's sheet kernel for `local` recurrence: max(3, odd(sqrt(C) // 4))."""
    k = math.isqrt(channels) // 4
    if k % 2 == 0:
        k += 1
    return max(3, k)


# ----------------------------------------------------------------- operators
def _conv_shape(a, s, t):
    _need_map(s, "conv")
    if s[0] % a["groups"] or _target_channels(s, t) % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide both channel counts ({s[0]} and "
                      f"{_target_channels(s, t)})", arg="groups")
    return (_target_channels(s, t), *_spatial(s, a["k"], a["stride"], a["padding"], "conv", a["dilation"]))


def fixable(ctor: str, a: dict) -> str:
    """The constructor, its weights made constant buffers when the operator is `fixed`
    (set to `init` when one is given; see layers.fixed_weights)."""
    if not a.get("fixed"):
        return ctor
    return f"fixed_weights({ctor}, {a['init']!r})" if a.get("init") is not None else f"fixed_weights({ctor})"


# Arguments every operator with weights takes (LANGUAGE.md 9.4): constant weights, and their value.
FIXED_ARGS = (Arg("fixed", "bool", False), Arg("init", "float", None))


def _conv_modules(a, s, o):
    return [("", fixable(conv_ctor(s[0], o[0], a["k"], a["stride"], a["padding"], a["groups"], a["dilation"],
                                   a["bias"], a["weightnorm"]), a))]


def _pool_shape(name):
    def shape(a, s, t):
        _need_map(s, name)
        if a.get("out") is not None:  # adaptive: a fixed output size
            if a.get("k") is not None:
                raise OpError("avgpool takes either a kernel k or an output size out, not both", arg="out")
            return (s[0], a["out"], a["out"])
        if a.get("k") is None:  # global average pool
            return (s[0], 1, 1)
        stride = a["stride"] if a["stride"] is not None else a["k"]
        return (s[0], *_spatial(s, a["k"], stride, a["padding"], name))
    return shape


def _adapt_shape(a, s, t):
    _need_map(s, "adapt")
    if t is None:
        raise OpError("adapt needs a target area", hint="use conv or linear in a readout")
    return t


def _adapt_modules(a, s, o):
    return [("conv", conv_ctor(s[0], o[0], 1, stride=adapt_stride(s, o) or 1))] if s[0] != o[0] else []


def adapt_stride(s: Shape, o: Shape) -> int | tuple[int, int] | None:
    """The stride that makes adapt's 1 x 1 conv also do its nearest resize, when the map shrinks
    by whole factors: nearest then picks input pixel (i*s, j*s), and a 1 x 1 conv commutes with
    that pick, so the conv runs on 1/s^2 of the pixels (and its backward with it). Else None."""
    if len(s) != 3 or tuple(s[1:]) == tuple(o[1:]) or s[1] % o[1] or s[2] % o[2]:
        return None
    sh, sw = s[1] // o[1], s[2] // o[2]
    return sh if sh == sw else (sh, sw)


def _lateral_shape(a, s, t):
    _need_map(s, "lateral")
    kind = a["kind"]
    if a.get("max_gain"):
        if a["max_gain"] < 0:
            raise OpError(f"max_gain must be positive (0 = unbounded), got {a['max_gain']}", arg="max_gain")
        if kind not in ("full", "self"):
            raise OpError(f"max_gain bounds full and self recurrence, not {kind}", arg="max_gain",
                          hint="use recurrence full or self, or max_gain=0")
    c = s[0] if kind in ("self", "local", "localdepthwise") else _target_channels(s, t)
    return (c, s[1], s[2])


def _lateral_modules(a, s, o):
    kind, k, c = a["kind"], a["k"], s[0]
    gain = a.get("max_gain") or 0
    if kind == "self":
        return [("", f"bound_gain(SelfRecurrence(), {gain!r})" if gain else "SelfRecurrence()")]
    if kind == "full":
        conv = conv_ctor(c, o[0], k, padding=k // 2)
        return [("conv", f"bound_gain({conv}, {gain!r}, {tuple(s)!r})" if gain else conv)]
    if kind == "depthpointwise":
        return [("depthwise_conv", conv_ctor(c, c, k, padding=k // 2, groups=c)),
                ("pointwise_conv", conv_ctor(c, o[0], 1))]
    if kind == "pointdepthwise":
        return [("pointwise_conv", conv_ctor(c, o[0], 1)),
                ("depthwise_conv", conv_ctor(o[0], o[0], k, padding=k // 2, groups=o[0]))]
    if kind == "local":
        return [("", f"LocalSheet({c}, {s[1]}, {s[2]}, {local_kernel(c)})")]
    if kind == "localdepthwise":
        return [("local_conv", f"LocalSheet({c}, {s[1]}, {s[2]}, {local_kernel(c)})"),
                ("patchy_conv", conv_ctor(c, c, k, padding=k // 2, groups=c))]
    return []


def _conv_weights(a, s, o):
    return s[0] * o[0] * a["k"] ** 2 // a["groups"] + o[0]


def _sheet_weights(k: int, shape: Shape) -> int:
    return k * k + 1 + 4 * math.prod(shape)  # the kernel, and two int64 index maps of the sheet


def _lateral_weights(a, s, o):
    kind, k, c = a["kind"], a["k"], s[0]
    if kind == "full" and a.get("max_gain"):
        return c * o[0] * k * k + o[0] + math.prod(s)  # GainBound's power-iteration vector
    return {"self": 1, "full": c * o[0] * k * k + o[0], "depthpointwise": c * k * k + c * o[0] + c + o[0],
            "pointdepthwise": c * o[0] + o[0] * k * k + 2 * o[0], "local": _sheet_weights(local_kernel(c), s),
            "localdepthwise": _sheet_weights(local_kernel(c), s) + c * k * k + c}.get(kind, 0)


def _linear_shape(a, s, t):
    return (a["n"],)


def _linear_modules(a, s, o):
    features = math.prod(s)
    text = f"nn.Linear({features}, {a['n']}" + ("" if a["bias"] else ", bias=False") + ")"
    if a.get("weightnorm"):
        text = f"nn.utils.parametrizations.weight_norm({text})"
    return [("", fixable(text, a))]


def _keep(name):
    def shape(a, s, t):
        return s
    return shape


def _map_keep(name):
    def shape(a, s, t):
        _need_map(s, name)
        return s
    return shape


def _resize_shape(a, s, t):
    _need_map(s, "resize")
    if t is None:
        raise OpError("resize needs a target area")
    return (s[0], t[1], t[2])


def _depthwise_shape(a, s, t):
    _need_map(s, "depthwise")
    return (s[0], *_spatial(s, a["k"], a["stride"], a["padding"], "depthwise"))


def _pointwise_shape(a, s, t):
    _need_map(s, "pointwise")
    return (_target_channels(s, t), s[1], s[2])


OPERATORS: dict[str, OpDef] = {op.name: op for op in [
    OpDef("conv", (Arg("k", "int", required=True), Arg("stride", "int", 1), Arg("padding", "int", None),
                   Arg("groups", "int", 1), Arg("dilation", "int", 1), Arg("bias", "bool", True),
                   Arg("weightnorm", "bool", False), *FIXED_ARGS),
          _conv_shape, _conv_modules, "k x k convolution to the target's channels", _conv_weights),
    OpDef("depthwise", (Arg("k", "int", required=True), Arg("stride", "int", 1), Arg("padding", "int", None),
                        Arg("bias", "bool", True), *FIXED_ARGS),
          _depthwise_shape, lambda a, s, o: [("", fixable(conv_ctor(s[0], s[0], a["k"], a["stride"], a["padding"],
                                                                     s[0], 1, a["bias"]), a))],
          "per-channel k x k convolution", lambda a, s, o: s[0] * (a["k"] ** 2 + 1)),
    OpDef("pointwise", (Arg("bias", "bool", True), *FIXED_ARGS), _pointwise_shape,
          lambda a, s, o: [("", fixable(conv_ctor(s[0], o[0], 1, bias=a["bias"]), a))], "1 x 1 convolution",
          lambda a, s, o: s[0] * o[0] + o[0]),
    OpDef("scale", (Arg("init", "float", 1.0), Arg("fixed", "bool", False)), _keep("scale"),
          lambda a, s, o: [("", f"Scale({a['init']!r}, fixed={a['fixed']})")], "one scalar weight",
          lambda a, s, o: 1),
    OpDef("maxpool", (Arg("k", "int", required=True), Arg("stride", "int", None), Arg("padding", "int", 0)),
          _pool_shape("maxpool"), doc="max pooling (stride defaults to k)"),
    OpDef("avgpool", (Arg("k", "int", None), Arg("stride", "int", None), Arg("padding", "int", 0),
                      Arg("out", "int", None)),
          _pool_shape("avgpool"), doc="average pooling; without arguments, global"),
    OpDef("resize", (), _resize_shape, doc="nearest resampling to the target's size"),
    OpDef("adapt", (), _adapt_shape, _adapt_modules, "1 x 1 conv if channels differ, then resize",
          lambda a, s, o: s[0] * o[0] + o[0] if s[0] != o[0] else 0),
    OpDef("local", (Arg("k", "int", 3),), _map_keep("local"),
          lambda a, s, o: [("", f"LocalSheet({s[0]}, {s[1]}, {s[2]}, {a['k']})")],
          "topographic lateral connection", lambda a, s, o: _sheet_weights(a["k"], s)),
    OpDef("lateral", (Arg("kind", "enum", required=True, choices=RECURRENCE_KINDS), Arg("k", "int", 3),
                      Arg("max_gain", "float", 0.0)),
          _lateral_shape, _lateral_modules, "DynVision's recurrence families", _lateral_weights),
    OpDef("flatten", (), lambda a, s, t: (math.prod(s),), doc="flatten to a vector"),
    OpDef("linear", (Arg("n", "int", required=True), Arg("bias", "bool", True), Arg("weightnorm", "bool", False),
                     *FIXED_ARGS),
          _linear_shape, _linear_modules,
          "fully connected layer (flattens its input; into an area [n] it gives n maps of 1 x 1)",
          lambda a, s, o: (math.prod(s) + 1) * a["n"]),
    OpDef("dropout", (Arg("p", "float", 0.5),), _keep("dropout"),
          lambda a, s, o: [("", f"nn.Dropout({a['p']!r})")], "dropout while training"),
    OpDef("identity", (), _keep("identity"), doc="passes its input on"),
]}


def resolve_defaults(op: OpDef, args: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults that depend on other arguments (padding k//2, stride k)."""
    out = {a.name: a.default for a in op.args}
    out.update(args)
    if "padding" in out and out["padding"] is None:
        k = out.get("k") or 1
        out["padding"] = out.get("dilation", 1) * (k - 1) // 2 if op.name in ("conv", "depthwise") else 0
    if op.name in ("maxpool", "avgpool") and out.get("k") is not None and out["stride"] is None:
        out["stride"] = out["k"]
    for a in op.args:
        if a.kind == "int" and out.get(a.name) is not None and a.name != "p":
            if out[a.name] < (0 if a.name == "padding" else 1):
                raise OpError(f"{a.name} must be {'>= 0' if a.name == 'padding' else 'positive'}, "
                              f"got {out[a.name]}", arg=a.name)
    if op.name == "lateral" and not out.get("max_gain"):
        del out["max_gain"]  # unbounded: the operator reads as before (pictures, tooltips, generated code)
    if op.name == "dropout" and not 0 <= out["p"] < 1:
        raise OpError(f"p must be in [0, 1), got {out['p']}", arg="p")
    return out


def has_channel_map(kind: str, args: dict) -> bool:
    """Whether an operator maps channels to the target's (so it may end a pipeline into an area)."""
    if kind == "lateral":
        return args["kind"] not in ("self", "local", "localdepthwise")
    return kind in ("conv", "pointwise", "adapt", "linear")


# ------------------------------------------------------ learnable functions
@dataclass(frozen=True)
class FnDef:
    name: str
    args: tuple[Arg, ...]
    takes_input: bool  # first argument is a tensor expression
    doc: str = ""


FUNCTIONS: dict[str, FnDef] = {f.name: f for f in [
    FnDef("groupnorm", (Arg("groups", "int", required=True),), True, "GroupNorm over channels"),
    FnDef("batchnorm", (), True, "BatchNorm2d"),
    FnDef("layernorm", (), True, "normalise over channels and space (GroupNorm with one group)"),
    FnDef("bias", (Arg("mode", "enum", "channel", choices=BIAS_MODES),), False, "learnable bias"),
]}

# Reductions (LANGUAGE.md 9.4): `mean(x, channels)` -> [1, H, W], `sum(x, space)` -> [C, 1, 1], both
# broadcast back; the IR calls them NAME_OVER (`mean_channels`). `max` with another second argument
# is the elementwise max of MATH_FUNCTIONS.
REDUCTIONS = ("mean", "sum", "max")
REDUCE_OVER = {"channels": (-3,), "space": (-2, -1)}  # the dimensions of a (B, C, H, W) map (or a C, H, W bias)
REDUCED = {f"{name}_{over}": (name, over) for name in REDUCTIONS for over in REDUCE_OVER}

from .functions import MATH_FUNCTIONS  # noqa: E402,F401 (the one function table; re-exported)


def function_module(name: str, args: dict, shape: Shape) -> str:
    c, h, w = shape
    if name == "groupnorm":
        if c % args["groups"]:
            raise OpError(f"groupnorm: {args['groups']} groups do not divide {c} channels", arg="groups")
        return f"nn.GroupNorm({args['groups']}, {c})"
    if name == "batchnorm":
        return f"nn.BatchNorm2d({c})"
    if name == "layernorm":
        return f"nn.GroupNorm(1, {c})"
    if name == "bias":
        dims = {"spatial": (c, h, w), "channel": (c, 1, 1), "scalar": (1,)}[args["mode"]]
        return f"Bias({dims!r})"
    raise KeyError(name)
