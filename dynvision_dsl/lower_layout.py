"""Lowering of a convolution's memory layout (layout.py decides): a contiguous input
for the convolutions that run contiguous, matrix products for a convolution onto a 1 x 1
map (the centre tap's `F.linear` from a 1 x 1 map, else ops_window.window_linear over
the taps it reads), ops_gemm.gemm_conv for a convolution onto a small map, and a shrinking
`adapt` resized before its 1 x 1 conv."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import channels_last_modules, contiguous_input, gemm_conv_op, op_tap, shrinks
from .ops import OpSpec, adapt_stride
from .ops_gemm import gemm_conv
from .ops_window import window_linear
from .pycode import string_literal


def conv_input(builder, v, o: OpSpec):
    """`v`, made contiguous first when op `o` is a convolution that runs contiguous."""
    if contiguous_input(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)):
        return builder.node("call_method", "contiguous", (v,))
    return v


def centre_tap_conv(builder, v, o: OpSpec):
    """conv `o` (or a full lateral) onto a 1 x 1 map as matrix products with the kernel taps it
    reads (layout.tap_window), else None. From a 1 x 1 map that is one tap t:
    `linear(flatten(v), weight[:, :, t, t], bias)` back to (C, 1, 1); otherwise window_linear.
    The weight is stored channels-last: a kernel row's taps are a unit-stride matrix."""
    found = op_tap(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape))
    if found is None:
        return None
    sub, window = found
    path = f"{o.path}.{sub}" if sub else o.path
    bias = o.a.get("bias", True)
    if tuple(o.in_shape[1:]) == (1, 1):
        return _tap_linear(builder, v, path, window.rows[0], bias, tuple(o.out_shape))
    return _window_linear(builder, v, path, window, bias, o.a["k"])


def _window_linear(builder, v, path: str, window, bias: bool, k: int):
    """`window_linear(v, weight, bias, rows, cols, at, dilation)` of conv module `path` (a k x k
    kernel), with a comment naming the taps it reads."""
    weight, b = _weight_and_bias(builder, path, bias)
    out = builder.fn(window_linear, v, weight, b, window.rows, window.cols, window.at, window.dilation)
    rows, cols = window.rows, window.cols
    out.meta["note"] = (f"{path}: kernel taps {_span((rows[0], cols[0]), rows, cols, 1)} at input pixels "
                        f"{_span(window.at, rows, cols, window.dilation)}"
                        + (", the other taps on the zero padding" if window.taps < k * k else ""))
    return out


def _weight_and_bias(builder, path: str, bias: bool):
    """The get_attr nodes of conv module `path`'s weight and (None without one) bias."""
    return builder.node("get_attr", f"{path}.weight"), builder.node("get_attr", f"{path}.bias") if bias else None


def _span(start: tuple[int, int], rows, cols, step: int) -> str:
    """`[a:b, c:d]` (with `:step` unless 1): the block from `start` as many rows and columns as `rows`, `cols`."""
    ends = [(a, a + step * (hi - lo - 1) + 1) for a, (lo, hi) in zip(start, (rows, cols))]
    return "[" + ", ".join(f"{a}:{b}" + (f":{step}" if step != 1 else "") for a, b in ends) + "]"


def _tap_linear(builder, v, path: str, tap: int, bias: bool, shape: tuple[int, ...]):
    """`linear(flatten(v), weight[:, :, tap, tap], bias)` of conv module `path`, as `shape`."""
    weight, b = _weight_and_bias(builder, path, bias)
    weight = builder.node("call_method", "select", (builder.node("call_method", "select", (weight, 3, tap)), 2, tap))
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


def matmul_conv(builder, v, o: OpSpec):
    """conv `o` (or a full lateral) onto a small map as `gemm_conv(v, weight, bias, stride,
    padding, dilation)` (layout.gemm_conv_op), with a comment saying so; else None."""
    found = gemm_conv_op(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape))
    if found is None:
        return None
    sub, g = found
    path = f"{o.path}.{sub}" if sub else o.path
    weight, b = _weight_and_bias(builder, path, o.a.get("bias", True))
    out = builder.fn(gemm_conv, v, weight, b, g.stride, g.padding, g.dilation)
    h, w = o.out_shape[1:]
    out.meta["note"] = (f"{path}: im2col and one matrix product onto the {h} x {w} map "
                        f"(weight [{o.out_shape[0]}, {g.k}*{g.k}*{o.in_shape[0]}])")
    return out


def rewritten_conv(builder, v, o: OpSpec):
    """The value of op `o` on `v` through one of the rewrites above, or None."""
    for rewrite in (centre_tap_conv, matmul_conv, resize_first):
        if (out := rewrite(builder, v, o)) is not None:
            return out
    return None


def channels_last_table(program) -> str:
    """The generated module's `_channels_last` tuple: the program's modules stored
    channels-last, each path a string literal (paths are user text)."""
    have = {md.path for md in program.modules}
    items = [string_literal(p) for p in channels_last_modules(program.model) if p in have]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
