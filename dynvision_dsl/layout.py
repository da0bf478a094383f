"""Memory layout of each convolution, chosen at compile time from its map size.

Channels-last convolutions win on large maps and lose on small ones (2-core CPU,
batch 4, 3 x 3 kernels, min of 40 calls, ms contiguous / channels-last: 64 ch at
32 x 32 2.0 / 0.8, 16 x 16 0.26 / 0.23, 128 ch at 8 x 8 0.24 / 0.23, 256 ch at 4 x 4
0.30 / 0.45, 512 ch at 2 x 2 0.78 / 1.50, 529 ch at 1 x 1 0.55 / 0.80; a contiguous
weight on a channels-last input is slower than either). So convolutions whose output
map has at least CHANNELS_LAST_MIN_PIXELS pixels run channels-last and the rest run
contiguous, their input made contiguous first (a no-op unless it comes from a
channels-last area).

A convolution whose output map is 1 x 1 (zero padding, ungrouped, any kernel, stride and
dilation) reads a fixed block of kernel taps at fixed input pixels (tap_window); the taps on
the padding add nothing. The rule, by shape class (benchmarks/taps.py; us per call, batch 4,
DyRCNNx8's IT.conv [4,256,2,2] x [529,256,3,3] stride 2, 4 taps, forward at 1 / 2 threads):
- from a 1 x 1 map (one tap, IT.conv2, IT.recurrence): `F.linear` with that tap;
- from a larger map (several taps): ops_window.window_linear, one bmm over the kernel rows
  read, each a unit-stride view of the channels-last weight: 188 / 80 against the conv's
  762 / 683-888 (a ready tap matrix: 96 / 29). Slicing the taps into one matrix per call
  copies 4/9 of the weight and loses to the conv itself (2012 / 982-1009), and a matrix
  built once per run would need its own state; window_linear keeps most of the gain without
  either. Forward + backward 1660 / 1203 against the conv's 4426 / 2746 (its backward pads
  the taps' gradient into one weight gradient, as the conv's allocates one); at batch 1 the
  conv is cheap (forward 191 / 62, window_linear 146 / 60; training 1333 / 764-878 against
  1532 / 938-1082, the one class where it loses, by the full-size weight gradient).
  Whole DyRCNNx8, (10,3,64,64) b4, 1 thread: forward 139.4 -> 128.8 ms, training step
  549.1 -> 507.6 ms (1.08x each).
- same-size convolutions on 2 x 2 maps are no tap matrices: the dense matrix they equal is
  faster prebuilt ([4,256,2,2] x [256,256,3,3] at 2 threads: 76 against the conv's 208; 512
  channels 642-668 against 829-1251) but costs 2300 (256) and 11600 (512) to build: per call
  a loss, once per run (which would need per-run state) about even at T = 10-20 steps. They
  run as gemm_conv (below).

A convolution onto a map of 2 to GEMM_MAX_PIXELS pixels (a 1 x 1 kernel: to 4 x 4), ungrouped,
any channels, runs as ops_gemm.gemm_conv: im2col and one matrix product, its weight stored
channels-last (a view as [O, k*k*C]).
benchmarks/gemm.md (a quiet machine, 2 threads), us per call conv / gemm, forward and
forward + backward, batch 4 (batch 8): CorNetRT's IT.conv2 [512,2,2] x [512,512,3,3] 832 / 448
(1007 / 649) and 3881 / 2266 (5026 / 3062); IT.conv [256,4,4] x [512,256,3,3] s2 488 / 254
and 2928 / 1937; DyRCNNx8's V4.conv2 [256,2,2] 225 / 188 and 1297 / 925; CordsNet's 1 x 1
skip [128,8,8] x [256,128,1,1] s2 onto 4 x 4 88 / 58 and 476 / 276. Onto 4 x 4 with a 3 x 3
kernel it loses (V4.conv2 [256,4,4] 350 / 405 and 1626 / 1672, batch 8 530 / 646), so those
stay convolutions; a 1 x 1 kernel onto 7 x 7 (ResNet18's last skip at 224 px) is unmeasured
and stays one. At batch 1 oneDNN's conv is cheap (IT.conv2 393 / 430), the more so with the
channels-last weight: gemm_conv then runs F.conv2d (ops_gemm says by how much).
Few channels change nothing: [8,2,2] x [8,8,3,3] 45 / 22 and 209 / 127 at batch 4.
Whole models (b4, forward and training step, old / new, two runs): CorNetRT 1.15-1.18x and
1.13-1.14x, CordsNet 1.04-1.07x and 1.13-1.19x, DyRCNNx8 1.00-1.03x and 1.02-1.06x.
Imports no torch: ops.py builds constructors with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHANNELS_LAST_MIN_PIXELS = 64  # 8 x 8: about even there; channels-last below it loses 1.5-2x
CONV_KINDS = ("conv", "depthwise", "pointwise", "local", "lateral")
GEMM_MAX_PIXELS = 4  # 2 x 2: a 4 x 4 output with a 3 x 3 kernel is even with the conv (gemm_conv_op)


def channels_last(shape: tuple[int, ...]) -> bool:
    """Whether an op whose output has `shape` (C, H, W) runs channels-last."""
    return len(shape) == 3 and shape[1] * shape[2] >= CHANNELS_LAST_MIN_PIXELS


@dataclass(frozen=True)
class Window:
    """The taps a convolution with a 1 x 1 output reads: kernel rows rows[0]:rows[1] and
    columns cols[0]:cols[1], tap (rows[0], cols[0]) at input pixel `at`, the others `dilation` apart."""
    rows: tuple[int, int]
    cols: tuple[int, int]
    at: tuple[int, int]
    dilation: int

    @property
    def taps(self) -> int:
        return (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])


def _read(k: int, p: int, d: int, size: int) -> tuple[int, int] | None:
    """The kernel indices [start, stop) whose input index -p + d * i lies in 0 .. size - 1."""
    read = [i for i in range(k) if 0 <= d * i - p < size]
    return (read[0], read[-1] + 1) if read else None


def tap_window(a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> Window | None:
    """The Window of the convolution with arguments `a` from map `s` to a 1 x 1 map `o`, or
    None (a larger output, grouped, or only padding under the kernel)."""
    if len(s) != 3 or len(o) != 3 or tuple(o[1:]) != (1, 1) or a.get("groups", 1) != 1:
        return None
    k, p, d = a["k"], a["padding"], a.get("dilation", 1)
    rows, cols = _read(k, p, d, s[1]), _read(k, p, d, s[2])
    if rows is None or cols is None:
        return None
    return Window(rows, cols, (d * rows[0] - p, d * cols[0] - p), d)


def shrinks(s: tuple[int, ...], o: tuple[int, ...]) -> bool:
    """Whether the map `o` has fewer pixels than `s`."""
    return o[1] * o[2] < s[1] * s[2]


def op_tap(kind: str, a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> tuple[str, Window] | None:
    """(submodule, Window) when op `kind` is a convolution (`conv`, or `lateral` of kind full,
    whose conv is padded k // 2) onto a 1 x 1 map: tap_window's Window."""
    if kind == "conv":
        window = tap_window(a, s, o)
        return None if window is None else ("", window)
    if kind == "lateral" and a["kind"] == "full":
        window = tap_window({"k": a["k"], "padding": a["k"] // 2}, s, o)
        return None if window is None else ("conv", window)
    return None


@dataclass(frozen=True)
class Gemm:
    """A convolution gemm_conv runs: its kernel, stride, padding and dilation."""
    k: int
    stride: int
    padding: int
    dilation: int


def gemm_conv_op(kind: str, a: dict[str, Any], s: tuple[int, ...], o: tuple[int, ...]) -> tuple[str, Gemm] | None:
    """(submodule, Gemm) when op `kind` (s -> o) is an ungrouped convolution (`conv`, or a
    `lateral` of kind full) that runs as one matrix product (the rule in the module docstring)."""
    if len(s) != 3 or len(o) != 3 or op_tap(kind, a, s, o) is not None:
        return None
    if kind == "conv" and a.get("groups", 1) == 1:
        sub, conv = "", Gemm(a["k"], a.get("stride", 1), a["padding"], a.get("dilation", 1))
    elif kind == "lateral" and a["kind"] == "full":
        sub, conv = "conv", Gemm(a["k"], 1, a["k"] // 2, 1)
    else:
        return None
    pixels = o[1] * o[2]
    small = 1 < pixels <= (4 * GEMM_MAX_PIXELS if conv.k == 1 else GEMM_MAX_PIXELS)
    return (sub, conv) if small else None


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
    return kind in CONV_KINDS and not channels_last(o) and op_tap(kind, a, s, o) is None \
        and gemm_conv_op(kind, a, s, o) is None


def channels_last_modules(model) -> tuple[str, ...]:
    """Dotted paths of the modules whose weights are stored channels-last: those of ops
    with a large output map, of convolutions onto a 1 x 1 map (whose taps of one kernel row
    are then a matrix with unit stride) and of gemm_conv_op's (whose weight is then a view as
    [O, k*k*C]), and area functions (e.g. groupnorm) of large areas."""
    from .ops import OPERATORS

    paths: list[str] = []
    for ops in [c.ops for c in model.conns] + [r.ops for r in model.readouts]:
        for o in ops:
            if channels_last(conv_map(o.kind, tuple(o.in_shape), tuple(o.out_shape))) or op_tap(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)) \
                    or gemm_conv_op(o.kind, o.a, tuple(o.in_shape), tuple(o.out_shape)):
                subs = OPERATORS[o.kind].modules(o.a, o.in_shape, o.out_shape)
                paths += [f"{o.path}.{sub}" if sub else o.path for sub, _ in subs]
    for area in model.areas.values():
        if channels_last(tuple(area.shape)):
            paths += list(area.functions)
    return tuple(dict.fromkeys(paths))
