"""Lowering of a convolution's memory layout (layout.py decides): a contiguous input
for the convolutions that run contiguous, the centre-tap matrix product for a
convolution from a 1 x 1 map to a 1 x 1 map, and a shrinking `adapt` resized before
its 1 x 1 conv."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import channels_last_modules, contiguous_input, op_tap, shrinks
from .ops import OpSpec, adapt_stride
from .pycode import string_literal


def conv_input(builder, v, o: OpSpec):
    """`v`, made contiguous first when op `o` is a convolution that runs contiguous."""
    if contiguous_input(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)):
        return builder.node("call_method", "contiguous", (v,))
    return v


def centre_tap_conv(builder, v, o: OpSpec):
    """conv `o` (or a full lateral) as `linear(flatten(v), weight[:, :, t, t], bias)` back to
    (C, 1, 1) when it maps 1 x 1 to 1 x 1 (only tap t sees the input: the same sum, without
    the padded taps), else None. The weight is stored channels-last: the tap is a unit-stride matrix."""
    found = op_tap(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape))
    if found is None:
        return None
    sub, tap = found
    path = f"{o.path}.{sub}" if sub else o.path
    return _tap_linear(builder, v, path, tap, o.a.get("bias", True), tuple(o.out_shape))


def _tap_linear(builder, v, path: str, tap: int, bias: bool, shape: tuple[int, ...]):
    """`linear(flatten(v), weight[:, :, tap, tap], bias)` of conv module `path`, as `shape`."""
    weight = builder.node("get_attr", f"{path}.weight")
    weight = builder.node("call_method", "select", (builder.node("call_method", "select", (weight, 3, tap)), 2, tap))
    b = builder.node("get_attr", f"{path}.bias") if bias else None
    out = builder.fn(F.linear, builder.fn(torch.flatten, v, 1), weight, b)
    return builder.fn(torch.unflatten, out, 1, shape)


def resize_first(builder, v, o: OpSpec):
    """`adapt` o that shrinks the map and changes channels as nearest resize, then its 1 x 1
    conv: the same value at every pixel (nearest resampling picks pixels, a 1 x 1 conv maps
    each pixel alone) on fewer pixels; else None (no conv, or a map that grows or stays, or a
    shrink by whole factors to more than 1 x 1: that conv is built strided, ops.adapt_stride)."""
    if o.kind != "adapt" or o.in_shape[0] == o.out_shape[0] or not shrinks(tuple(o.in_shape), tuple(o.out_shape)):
        return None
    if tuple(o.out_shape[1:]) != (1, 1) and adapt_stride(o.in_shape, o.out_shape):
        return None
    v = builder.node("call_function", F.interpolate, (v, tuple(o.out_shape[1:])))
    if tuple(o.out_shape[1:]) == (1, 1):  # a 1 x 1 conv on a 1 x 1 map: a matrix product
        return _tap_linear(builder, v, f"{o.path}.conv", 0, True, tuple(o.out_shape))
    return builder.node("call_module", f"{o.path}.conv", (conv_input(builder, v, o),))


def rewritten_conv(builder, v, o: OpSpec):
    """The value of op `o` on `v` through one of the rewrites above, or None."""
    out = centre_tap_conv(builder, v, o)
    return out if out is not None else resize_first(builder, v, o)


def channels_last_table(program) -> str:
    """The generated module's `_channels_last` tuple: the program's modules stored
    channels-last, each path a string literal (paths are user text)."""
    have = {md.path for md in program.modules}
    items = [string_literal(p) for p in channels_last_modules(program.model) if p in have]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
