"""The runtime op of a convolution onto a small output map run as one matrix product
(layout.gemm_conv_op decides which): im2col, then one `mm`.

oneDNN's convolutions on maps of a few pixels run far below the machine's matrix-product rate
(benchmarks/conv_calls.md, benchmarks/gemm.md). Such a convolution is one product
weight [O, k*k*C] @ columns [k*k*C, N*Ho*Wo]. With the weight stored channels-last
(layout.channels_last_modules) its [O, k*k*C] matrix is a view, and the columns are one copy
of a strided view of the zero-padded channels-last input whose innermost run is a pixel's C
channels: long unit-stride runs (an NCHW im2col copies runs of Wo numbers, or F.unfold's
layout needs a second copy; both measured slower, benchmarks/gemm.md). A weight computed
contiguous (a weight norm's) is multiplied in its own order, channels then taps, not copied. The product's
[O, N, Ho, Wo] comes back contiguous NCHW in one small copy.
`GemmConv` is its backward (autograd through the strided view would scatter the input gradient
through as_strided's general backward): the weight gradient is one product with the kept
columns, laid out channels-last like the weight; the input gradient one product, added back
onto the padded map tap by tap (k * k strided adds) and cropped.
While autograd does not record, the plain forward runs; tracers (torch.jit, so ONNX export)
and torch.compile get F.conv2d itself, which they know as one operator, and so do CUDA tensors
(the rule was measured on a CPU; the meta device, the runtime's cost probe, takes the CPU path).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _out_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _taps_first(weight) -> bool:
    """Whether the weight is stored channels-last: each output's k*k*C numbers run taps, then
    channels (else channels, then taps: a contiguous weight, e.g. a weight norm's output)."""
    return weight.is_contiguous(memory_format=torch.channels_last)


def _columns(x, k: int, stride: int, padding: int, dilation: int, taps_first: bool):
    """The columns [N*Ho*Wo, k*k*C] (rows: output pixels; columns in the weight's order) of
    x (N, C, H, W) for a k x k kernel: one copy of a strided view of the padded input, made
    channels-last first for a channels-last weight (runs of C numbers)."""
    if taps_first:
        x = x.contiguous(memory_format=torch.channels_last)
    if padding:
        x = F.pad(x, (padding,) * 4)
    n, c, h, w = x.shape
    ho, wo = _out_size(h, k, stride, 0, dilation), _out_size(w, k, stride, 0, dilation)
    sn, sc, sh, sw = x.stride()
    kernel = ((k, k, c), (dilation * sh, dilation * sw, sc)) if taps_first else ((c, k, k), (sc, dilation * sh, dilation * sw))
    view = x.as_strided((n, ho, wo, *kernel[0]), (sn, stride * sh, stride * sw, *kernel[1]), x.storage_offset())
    return view.reshape(n * ho * wo, k * k * c), (n, ho, wo)


def _taps(weight, taps_first: bool):
    """The weight as [O, k*k*C] in its memory order: a view."""
    return (weight.permute(0, 2, 3, 1) if taps_first else weight).reshape(weight.shape[0], -1)


def _gemm_value(x, weight, bias, stride: int, padding: int, dilation: int):
    """(the convolution's output as [O, N*Ho*Wo], the columns it multiplied, (N, Ho, Wo))."""
    taps_first = _taps_first(weight)
    cols, size = _columns(x, weight.shape[2], stride, padding, dilation, taps_first)
    w = _taps(weight, taps_first)
    out = torch.mm(w, cols.t()) if bias is None else torch.addmm(bias.unsqueeze(1), w, cols.t())
    return out, cols, size


def _fold(grad_cols, shape, k: int, stride: int, padding: int, dilation: int, taps_first: bool):
    """The input gradient from the columns' gradient [N*Ho*Wo, k*k*C]: each tap's block added
    onto the padded map (channels-last) where it was read, the padding cropped off."""
    n, c, h, w = shape
    ho, wo = _out_size(h, k, stride, padding, dilation), _out_size(w, k, stride, padding, dilation)
    g = grad_cols.view(n, ho, wo, *((k, k, c) if taps_first else (c, k, k)))
    g = g if taps_first else g.permute(0, 1, 2, 4, 5, 3)  # [N, Ho, Wo, k, k, C] either way
    out = grad_cols.new_zeros(n, h + 2 * padding, w + 2 * padding, c)
    for i in range(k):
        for j in range(k):
            out[:, dilation * i:dilation * i + stride * (ho - 1) + 1:stride,
                dilation * j:dilation * j + stride * (wo - 1) + 1:stride].add_(g[:, :, :, i, j])
    return out[:, padding:padding + h, padding:padding + w].permute(0, 3, 1, 2)


class GemmConv(torch.autograd.Function):
    """`_gemm_value` keeping its columns (not the input) for the weight gradient; the input
    gradient is the output gradient times the weight, folded back onto the input map."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        out, cols, _ = _gemm_value(x, weight, bias, stride, padding, dilation)
        ctx.save_for_backward(cols, weight)
        ctx.conv = (tuple(x.shape), stride, padding, dilation)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        cols, weight = ctx.saved_tensors
        shape, stride, padding, dilation = ctx.conv
        o, c, k = weight.shape[0], weight.shape[1], weight.shape[2]
        g = grad.to(weight.dtype)  # [O, N*L]; under autocast the forward ran in a lower precision
        taps_first = _taps_first(weight)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _fold(g.t() @ _taps(weight, taps_first), shape, k, stride, padding, dilation, taps_first)
        if ctx.needs_input_grad[1]:  # laid out like the weight
            grad_w = g @ cols.to(g.dtype)
            grad_w = grad_w.view(o, k, k, c).permute(0, 3, 1, 2) if taps_first else grad_w.view(o, c, k, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(1)
        return grad_x, grad_w, grad_b, None, None, None


def gemm_conv(x, weight, bias, stride=1, padding=0, dilation=1):
    """F.conv2d(x, weight, bias, stride, padding, dilation) of an ungrouped square-kernel
    convolution as im2col and one matrix product, contiguous NCHW; GemmConv while autograd
    records, F.conv2d itself for tracers, compilers and CUDA tensors."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or x.is_cuda:
        return F.conv2d(x, weight, bias, stride, padding, dilation)
    k = weight.shape[2]
    ho, wo = (_out_size(size, k, stride, padding, dilation) for size in x.shape[2:])
    grad = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if torch.is_grad_enabled() and grad:
        out = GemmConv.apply(x, weight, bias, stride, padding, dilation)
    else:
        out = _gemm_value(x, weight, bias, stride, padding, dilation)[0]
    # [O, N, Ho, Wo] to NCHW outside the Function: a view made in one may not be written in place
    return out.view(-1, x.shape[0], ho, wo).permute(1, 0, 2, 3).contiguous()
