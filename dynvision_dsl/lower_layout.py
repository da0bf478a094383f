"""Lowering of a convolution's memory layout (layout.py decides): a contiguous input
for the convolutions that run contiguous, and the centre-tap matrix product for a
convolution from a 1 x 1 map to a 1 x 1 map."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import centre_tap, contiguous_input
from .ops import OpSpec


def conv_input(builder, v, o: OpSpec):
    """`v`, made contiguous first when op `o` is a convolution that runs contiguous."""
    if contiguous_input(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)):
        return builder.node("call_method", "contiguous", (v,))
    return v


def centre_tap_conv(builder, v, o: OpSpec):
    """conv `o` as `linear(flatten(v), weight[:, :, t, t], bias)` back to (C, 1, 1) when it
    maps 1 x 1 to 1 x 1 (only tap t sees the input: the same sum, without the padded
    taps), else None. The weight is stored channels-last, so the tap is a unit-stride matrix."""
    if o.kind != "conv":
        return None
    tap = centre_tap(o.a, tuple(o.in_shape), tuple(o.out_shape))
    if tap is None:
        return None
    weight = builder.node("get_attr", f"{o.path}.weight")
    weight = builder.node("call_method", "select", (builder.node("call_method", "select", (weight, 3, tap)), 2, tap))
    bias = builder.node("get_attr", f"{o.path}.bias") if o.a["bias"] else None
    out = builder.fn(F.linear, builder.fn(torch.flatten, v, 1), weight, bias)
    return builder.fn(torch.unflatten, out, 1, tuple(o.out_shape))
