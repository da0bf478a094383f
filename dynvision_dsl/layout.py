"""Memory layout of each convolution, chosen at compile time from its map size.

Channels-last convolutions win on large maps and lose on small ones (2-core CPU,
batch 4, 3 x 3 kernels, min of 40 calls, ms contiguous / channels-last: 64 ch at
32 x 32 2.0 / 0.8, 16 x 16 0.26 / 0.23, 128 ch at 8 x 8 0.24 / 0.23, 256 ch at 4 x 4
0.30 / 0.45, 512 ch at 2 x 2 0.78 / 1.50, 529 ch at 1 x 1 0.55 / 0.80; a contiguous
weight on a channels-last input is slower than either). So convolutions whose output
map has at least CHANNELS_LAST_MIN_PIXELS pixels run channels-last and the rest run
contiguous, their input made contiguous first (a no-op unless it comes from a
channels-last area). A k x k convolution from a 1 x 1 map to a 1 x 1 map sees only
one kernel tap: it runs as a matrix product with that tap (lower_layout.centre_tap_conv).
Imports no torch: ops.py builds constructors with it.
"""
from __future__ import annotations

from typing import Any

CHANNELS_LAST_MIN_PIXELS = 64  # 8 x 8: about even there; channels-last below it loses 1.5-2x
CONV_KINDS = ("conv", "depthwise", "pointwise", "local", "lateral")


def channels_last(shape: tuple[int, ...]) -> bool:
    """Whether an op whose output has `shape` (C, H, W) runs channels-last."""
    return len(shape) == 3 and shape[1] * shape[2] >= CHANNELS_LAST_MIN_PIXELS


def centre_tap(a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> int | None:
    """The kernel index (row = column) of the one tap that sees the input when the
    convolution with arguments `a` maps a 1 x 1 map `s` to a 1 x 1 map `o`, or None
    (another size, grouped, or a padding that puts no tap on the input)."""
    if len(s) != 3 or len(o) != 3 or tuple(s[1:]) != (1, 1) or tuple(o[1:]) != (1, 1) or a.get("groups", 1) != 1:
        return None
    k, p, d = a["k"], a["padding"], a.get("dilation", 1)
    return p // d if p % d == 0 and p // d < k else None


def shrinks(s: tuple[int, ...], o: tuple[int, ...]) -> bool:
    """Whether the map `o` has fewer pixels than `s`."""
    return o[1] * o[2] < s[1] * s[2]


def op_tap(kind: str, a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> tuple[str, int] | None:
    """(submodule, tap) when op `kind` is a convolution (`conv`, or `lateral` of kind full,
    whose conv is padded k // 2) from a 1 x 1 map to a 1 x 1 map: centre_tap's tap."""
    if kind == "conv":
        tap = centre_tap(a, s, o)
        return None if tap is None else ("", tap)
    if kind == "lateral" and a["kind"] == "full":
        tap = centre_tap({"k": a["k"], "padding": a["k"] // 2}, s, o)
        return None if tap is None else ("conv", tap)
    return None


def conv_map(kind: str, s: tuple[int, ...], o: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a convolution of op `kind` (s -> o) outputs: `adapt` runs its 1 x 1 conv on
    the smaller of its two maps (resizing first when it shrinks: lower_layout.resize_first)."""
    if kind == "adapt":
        return (o[0], *(o if shrinks(s, o) else s)[1:])
    return o


def contiguous_input(kind: str, a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> bool:
    """Whether op `kind` (s -> o) is a convolution that runs contiguous, so its input must be."""
    if kind == "adapt":
        return s[0] != o[0] and not channels_last(conv_map(kind, s, o))
    return kind in CONV_KINDS and not channels_last(o) and op_tap(kind, a, s, o) is None


def channels_last_modules(model) -> tuple[str, ...]:
    """Dotted paths of the modules whose weights are stored channels-last: those of ops
    with a large output map and of centre-tap convolutions (whose tap slice is then a
    matrix with unit stride), and area functions (e.g. groupnorm) of large areas."""
    from .ops import OPERATORS

    paths: list[str] = []
    for ops in [c.ops for c in model.conns] + [r.ops for r in model.readouts]:
        for o in ops:
            if channels_last(conv_map(o.kind, tuple(o.in_shape), tuple(o.out_shape))) or op_tap(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)):
                subs = OPERATORS[o.kind].modules(o.a, o.in_shape, o.out_shape)
                paths += [f"{o.path}.{sub}" if sub else o.path for sub, _ in subs]
    for area in model.areas.values():
        if channels_last(tuple(area.shape)):
            paths += list(area.functions)
    return tuple(dict.fromkeys(paths))
