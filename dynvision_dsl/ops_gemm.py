"""The runtime op of a convolution onto a small output map run as one matrix product
(layout.gemm_conv_op decides which): im2col, then one `mm`.

oneDNN's convolutions on maps of a few pixels run far below the machine's matrix-product rate
(benchmarks/conv_calls.md, benchmarks/gemm.md). Such a convolution is one product
weight [O, k*k*C] @ columns [k*k*C, N*Ho*Wo]. With the weight stored channels-last
(layout.channels_last_modules) its [O, k*k*C] matrix is a view, and the columns are one copy
of a strided view of the zero-padded channels-last input whose innermost run is a pixel's C
channels: long unit-stride runs (an NCHW im2col copies runs of Wo numbers, or F.unfold's
layout needs a second copy; both measured slower, benchmarks/gemm.md). A weight computed
contiguous (a weight norm's) is multiplied in its own order, channels then taps, not copied.
The product's [O, N, Ho, Wo] comes back contiguous NCHW in one small copy.
Autograd differentiates it through the strided view: a custom backward (the weight gradient
one product with the kept columns, the input gradient one product added back onto the padded
map tap by tap) measured slower on a quiet machine, fwd+bwd us at 2 threads, autograd /
custom: [4,512,2,2] x [512,512,3,3] 2265 / 2789, [4,256,4,4] x [512,256,3,3] s2 1215 / 1342,
batch 8 3817 / 3870, batch 1 2347 / 2670; so there is none. Tracers (torch.jit, so ONNX export)
and torch.compile get F.conv2d itself, which they know as one operator, and so do CUDA tensors
(the rule was measured on a CPU; the meta device, the runtime's cost probe, takes the CPU path)
and a batch of 1, where oneDNN's conv with the channels-last weight is faster (us, forward and
forward + backward, conv / gemm: IT.conv2 364 / 407 and 1569 / 1611, DyRCNNx8's V4.conv2
39 / 145 and 436 / 624; from batch 2 on gemm_conv wins: IT.conv2 1104 / 434 at batch 2).
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
    """(the convolution's output as [O, N*Ho*Wo], (N, Ho, Wo))."""
    taps_first = _taps_first(weight)
    cols, size = _columns(x, weight.shape[2], stride, padding, dilation, taps_first)
    w = _taps(weight, taps_first)
    out = torch.mm(w, cols.t()) if bias is None else torch.addmm(bias.unsqueeze(1), w, cols.t())
    return out, size


def gemm_conv(x, weight, bias, stride=1, padding=0, dilation=1):
    """F.conv2d(x, weight, bias, stride, padding, dilation) of an ungrouped square-kernel
    convolution as im2col and one matrix product, contiguous NCHW; F.conv2d itself for
    tracers, compilers, CUDA tensors and a batch of 1."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or x.is_cuda or x.shape[0] == 1:
        return F.conv2d(x, weight, bias, stride, padding, dilation).contiguous()  # NCHW either way
    out, (n, ho, wo) = _gemm_value(x, weight, bias, stride, padding, dilation)
    return out.view(-1, n, ho, wo).permute(1, 0, 2, 3).contiguous()
