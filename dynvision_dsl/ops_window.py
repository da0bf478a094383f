"""The runtime op of a convolution whose output map is 1 x 1 and which reads several kernel
taps (layout.tap_window decides; one tap runs as a plain `F.linear` with that tap).

Such a convolution reads a fixed block of kernel taps (rows r0:r1, columns c0:c1) at a fixed
block of input pixels; the taps that fall on the zero padding add nothing. So it is a sum of
matrix products, one per kernel row read (one `bmm`): with the weight stored channels-last,
the taps of one kernel row are one unit-stride [(c1 - c0) * C, O] matrix, a view, so the
weight is not copied per call (slicing it into one [O, taps * C] matrix would copy 4/9 of
DyRCNNx8's IT.conv weight per step, more than the conv costs: benchmarks/taps.md).
`WindowLinear` is its backward: one weight-gradient product, padded with zeros to the
kernel, laid out like the weight.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _slices(rows, cols, at, dilation) -> tuple[slice, slice]:
    """The input rows and columns the window's taps meet."""
    return (slice(at[0], at[0] + dilation * (rows[1] - rows[0] - 1) + 1, dilation),
            slice(at[1], at[1] + dilation * (cols[1] - cols[0] - 1) + 1, dilation))


def _window(x, weight, rows, cols, at, dilation):
    """(the pixels read as [r, N, c * C], their taps as [r, c * C, O]: a view of a channels-last
    weight), for r kernel rows and c columns read."""
    down, across = _slices(rows, cols, at, dilation)
    r = rows[1] - rows[0]
    pixels = x.permute(2, 0, 3, 1)[down, :, across].reshape(r, x.shape[0], -1)
    return pixels, weight.permute(2, 3, 1, 0)[rows[0]:rows[1], cols[0]:cols[1]].reshape(r, -1, weight.shape[0])


def _window_value(x, weight, bias, rows, cols, at, dilation):
    """The convolution's output as [N, O]: one matrix product per kernel row read, summed."""
    out = torch.bmm(*_window(x, weight, rows, cols, at, dilation)).sum(0)
    return out if bias is None else out.add_(bias)


class WindowLinear(torch.autograd.Function):
    """`_window_value` with a backward that pads the taps' gradient with zeros into a weight
    gradient laid out channels-last, like the weight (one pass over it; autograd through the
    views would fill a zero gradient in their order, then transpose it into the weight's),
    and writes the input gradient into the pixels read."""

    @staticmethod
    def forward(ctx, x, weight, bias, rows, cols, at, dilation):
        ctx.save_for_backward(x, weight)
        ctx.window = (rows, cols, at, dilation)
        ctx.has_bias = bias is not None
        return _window_value(x, weight, bias, rows, cols, at, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(weight.dtype)  # under autocast the forward ran in a lower precision
        rows, cols, at, dilation = ctx.window
        down, across = _slices(rows, cols, at, dilation)
        pixels, taps = _window(x, weight, rows, cols, at, dilation)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            into = grad_x.permute(2, 0, 3, 1)[down, :, across]  # [r, N, c, C]
            into.copy_(torch.matmul(grad, taps.transpose(1, 2)).view(into.shape))
        if ctx.needs_input_grad[1]:  # [O, r, c, C] padded with zeros to [O, k, k, C]: [O, C, k, k] channels-last
            (k0, k1), (c0, c1), k = rows, cols, weight.shape[2:]
            read = grad.t() @ pixels.transpose(0, 1).reshape(grad.shape[0], -1)
            read = read.view(read.shape[0], k1 - k0, c1 - c0, x.shape[1])
            grad_w = F.pad(read, (0, 0, c0, k[1] - c1, k0, k[0] - k1)).permute(0, 3, 1, 2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b, None, None, None, None


def window_linear(x, weight, bias, rows, cols, at, dilation=1):
    """F.conv2d(x, weight, bias, ...) of a convolution whose 1 x 1 output reads kernel rows
    rows[0]:rows[1] and columns cols[0]:cols[1] at the input pixels from `at` on, `dilation`
    apart; the other taps fall on the zero padding. While autograd records, WindowLinear."""
    grad = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    traced = torch.jit.is_tracing() or torch.compiler.is_compiling()  # they differentiate the plain ops themselves
    if torch.is_grad_enabled() and grad and not traced:
        out = WindowLinear.apply(x, weight, bias, rows, cols, at, dilation)
    else:
        out = _window_value(x, weight, bias, rows, cols, at, dilation)
    return out.view(out.shape[0], out.shape[1], 1, 1)  # outside the Function: a view made in one may not be written in place
