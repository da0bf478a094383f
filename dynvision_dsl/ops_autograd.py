"""The runtime ops of the training-memory rewrites (the pass: backend/passes/lean_training_ops.py).

A training step keeps, per step and area, what backward needs and allocates what the forward
makes; on CPU every map allocated and freed between the kept ones also fragments the heap, and
the peak resident memory grows with it (benchmarks/profiles_training.md). So:
- `lean_max_pool2d` keeps only its input (which the ReLU before it keeps anyway) and recomputes
  the argmax in backward, instead of keeping an int64 index map (twice its float output);
- `euler_relu_` is the leaky Euler step and its ReLU, `relu(lerp(prev, drive, w))`, written
  into `drive` when that is a fresh map nobody else reads; it keeps only its output;
- `add_into(a, b)` is `a + b` written into a fresh `a` (a conv's output, a sum);
- `x.relu_()` replaces `torch.relu(x)` where x is a fresh map only the ReLU reads.
None of them changes a value or a gradient: the same kernels run on the same numbers.
Every runtime op a step's source calls is rendered into the standalone module
(`helper_sources`), so it still needs only torch.
"""
from __future__ import annotations

import inspect
import re

import torch
import torch.nn.functional as F

from .ops_gemm import _columns, _gemm_value, _out_size, _taps, _taps_first, gemm_conv
from .ops_window import WindowLinear, _slices, _window, _window_value, window_linear


class LeanMaxPool2d(torch.autograd.Function):
    """max_pool2d that saves only its input and recomputes the argmax indices in backward
    (same kernel, same ties, so the same gradient bit for bit), instead of saving them."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.pool = (kernel, kernel if stride is None else stride, padding)
        ctx.save_for_backward(x)
        return F.max_pool2d(x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        kernel, stride, padding = ctx.pool
        _, indices = F.max_pool2d(x.detach(), kernel, stride, padding, return_indices=True)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, [kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False, indices)
        return grad_x, None, None, None


def _traced() -> bool:
    """Whether torch.jit (ONNX export) or torch.compile is tracing this call."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def lean_max_pool2d(x, kernel, stride, padding):
    """F.max_pool2d(x, kernel, stride, padding); while autograd records, LeanMaxPool2d."""
    if torch.is_grad_enabled() and x.requires_grad and not _traced():
        return LeanMaxPool2d.apply(x, kernel, stride, padding)
    return F.max_pool2d(x, kernel, stride, padding)


class EulerRelu(torch.autograd.Function):
    """relu(lerp(prev, drive, w)) computed in drive's memory, saving only the result: the
    backward of lerp (a number as weight) needs nothing, ReLU's needs its output."""

    @staticmethod
    def forward(ctx, prev, drive, w):
        r = torch.lerp(prev, drive, w, out=drive).relu_()
        ctx.mark_dirty(drive)
        ctx.save_for_backward(r)
        ctx.w = w
        return r

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        g = torch.ops.aten.threshold_backward(grad, r, 0)
        grad_prev = g * (1 - ctx.w) if ctx.needs_input_grad[0] else None
        grad_drive = g.mul_(ctx.w) if ctx.needs_input_grad[1] else None
        return grad_prev, grad_drive, None


def euler_relu_(prev, drive, w):
    """torch.relu(torch.lerp(prev, drive, w)), written into `drive` (a fresh map nobody else
    reads) when it has prev's shape and dtype, else (and for tracers and compilers, which
    take no `out=` and plan memory themselves) into a new map."""
    if drive.shape != prev.shape or drive.dtype != prev.dtype or _traced():
        return torch.relu(torch.lerp(prev, drive, w))
    if torch.is_grad_enabled() and (prev.requires_grad or drive.requires_grad):
        return EulerRelu.apply(prev, drive, w)
    return torch.lerp(prev, drive, w, out=drive).relu_()


def add_into(a, b):
    """a + b, written into `a` (a fresh map nobody else reads) when b does not broadcast it."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return a + b
    return a.add_(b)


PRINTED = {lean_max_pool2d: "lean_max_pool2d", euler_relu_: "euler_relu_", add_into: "add_into",
           window_linear: "window_linear", gemm_conv: "gemm_conv"}
WORDS = {lean_max_pool2d: "max_pool2d", euler_relu_: "euler", add_into: "sum", window_linear: "taps",
         gemm_conv: "conv"}  # in value names: what they compute
_RENDERED = {"lean_max_pool2d": (_traced, LeanMaxPool2d, lean_max_pool2d),
             "euler_relu_": (_traced, EulerRelu, euler_relu_), "add_into": (add_into,),
             "window_linear": (_slices, _window, _window_value, WindowLinear, window_linear),
             "gemm_conv": (_out_size, _taps_first, _columns, _taps, _gemm_value, gemm_conv)}  # what the standalone module needs for each name a step calls


def helper_sources(step_sources: list[str]) -> list[str]:
    """The sources of the runtime ops these steps call (a Function with the call that uses it)."""
    text = "\n".join(step_sources)
    used = [obj for name, objs in _RENDERED.items() if re.search(rf"\b{name}\(", text) for obj in objs]
    return [inspect.getsource(obj).rstrip() for obj in dict.fromkeys(used)]
