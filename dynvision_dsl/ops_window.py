"""The runtime op of a convolution whose output map is 1 x 1 and which reads several kernel
taps (layout.tap_window decides; one tap runs as a plain `F.linear` with that tap).

Such a convolution reads a fixed block of kernel taps (rows r0:r1, columns c0:c1) at a fixed
block of input pixels; the taps that fall on the zero padding add nothing. So it is a sum of
matrix products, one per kernel row read: with the weight stored channels-last, the taps of
one kernel row are one unit-stride [O, (c1 - c0) * C] matrix, a view, so nothing is copied.
`WindowLinear` is its backward: one weight-gradient product written into the window of a
zero gradient (autograd through the views would allocate a zero weight gradient per row).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _window(x, weight, rows, cols, at, dilation):
    """(input pixels read [N, r, c, C], the taps that read them [O, r, c, C]): views of x and weight."""
    stop = (at[0] + dilation * (rows[1] - rows[0] - 1) + 1, at[1] + dilation * (cols[1] - cols[0] - 1) + 1)
    pixels = x[:, :, at[0]:stop[0]:dilation, at[1]:stop[1]:dilation].permute(0, 2, 3, 1)
    return pixels, weight.permute(0, 2, 3, 1)[:, rows[0]:rows[1], cols[0]:cols[1]]


def _window_value(x, weight, bias, rows, cols, at, dilation):
    """The convolution's output as [N, O]: one matrix product per kernel row read."""
    pixels, taps = _window(x, weight, rows, cols, at, dilation)
    n, o = x.shape[0], weight.shape[0]
    out = F.linear(pixels[:, 0].reshape(n, -1), taps[:, 0].reshape(o, -1), bias)
    for i in range(1, taps.shape[1]):
        out = torch.addmm(out, pixels[:, i].reshape(n, -1), taps[:, i].reshape(o, -1).t())
    return out


class WindowLinear(torch.autograd.Function):
    """`_window_value` with a backward that writes the weight gradient of the taps read into
    one zero gradient (the conv's own backward allocates one too) and the input gradient into
    the pixels read."""

    @staticmethod
    def forward(ctx, x, weight, bias, rows, cols, at, dilation):
        ctx.save_for_backward(x, weight)
        ctx.window = (rows, cols, at, dilation)
        ctx.has_bias = bias is not None
        return _window_value(x, weight, bias, rows, cols, at, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        pixels, taps = _window(x, weight, *ctx.window)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            into, _ = _window(grad_x, weight, *ctx.window)
            for i in range(taps.shape[1]):
                into[:, i].copy_((grad @ taps[:, i].reshape(taps.shape[0], -1)).view(into[:, i].shape))
        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(weight)
            _, into = _window(x, grad_w, *ctx.window)
            into.copy_((grad.t() @ pixels.reshape(pixels.shape[0], -1)).view(into.shape))
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
