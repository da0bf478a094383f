"""Small torch modules the operator library needs beyond torch.nn.

Self-contained on purpose (only torch imports): `emit` copies the classes a
model uses into the standalone module it writes.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F


class Scope(nn.Module):
    """A named container, so that dotted `as` names become state-dict prefixes."""

    def forward(self, *args):  # pragma: no cover - containers are never called
        raise RuntimeError("a Scope only groups modules")


class Scale(nn.Module):
    """One scalar weight: y = w * x (`fixed` keeps w out of training)."""

    def __init__(self, init: float = 1.0, fixed: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.full((1,), float(init)), requires_grad=not fixed)

    def forward(self, x):
        return x * self.weight


def fixed_weights(module, init=None):
    """`module` with its weights and bias as constant buffers: kept in the state dict, never
    trained (not parameters). With `init`, every weight is `init` and the bias 0."""
    for name, param in list(module.named_parameters(recurse=False)):
        value = param.detach().clone()
        if init is not None:
            value.fill_(init if name == "weight" else 0.0)
        del module._parameters[name]
        module.register_buffer(name, value)
    return module


class SelfRecurrence(nn.Module):
    """DynVision's `self` recurrence: y = w * x + b with two learnable scalars."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x * self.weight + self.bias


class Bias(nn.Module):
    """A learnable additive bias: per scalar, channel or spatial position."""

    def __init__(self, shape):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self):
        return self.bias


class GainBound(nn.Module):
    """A weight parametrisation that holds a lateral loop's gain at or below `max_gain`:
    weight * min(1, max_gain / g), g the operator norm of what the weight does to an input of
    `shape` (C, H, W) (a stride-1 'same' convolution), or |w| for a scalar (`shape` None).
    g comes from power iteration (one step per use while training, the vector kept in the
    buffer `u`, so a checkpoint restores it); with g <= max_gain < 1 the leaky loop
    r <- (1 - a) r + a (K r + drive) stays below |drive| / (1 - max_gain) at any length."""

    updates_in_training = True  # the power iteration runs at each use: a tail step may not leave one out

    def __init__(self, max_gain: float, shape=None, weight=None, padding: int = 0):
        super().__init__()
        self.max_gain, self.padding = float(max_gain), padding
        self.register_buffer("u", None if shape is None else torch.randn(1, *shape))
        if weight is not None and shape is not None:
            with torch.no_grad():
                for _ in range(100):  # start near the top singular vector, so the bound holds from step one
                    self._iterate(weight)

    def _iterate(self, weight):
        v = F.conv2d(self.u, weight, padding=self.padding)
        u = F.conv_transpose2d(v, weight, padding=self.padding)
        self.u.copy_(u / u.norm().clamp_min(1e-12))

    def forward(self, weight):
        if self.u is None:
            gain = weight.abs().max()
        else:
            if self.training:
                with torch.no_grad():
                    self._iterate(weight)
            gain = F.conv2d(self.u.clone(), weight, padding=self.padding).norm()
        return weight * torch.clamp(self.max_gain / gain.clamp_min(1e-12), max=1.0)


def bound_gain(module, max_gain: float, shape=None):
    """`module` with its weight parametrised by GainBound (see there); returns the module."""
    padding = module.padding[0] if shape is not None else 0
    bound = GainBound(max_gain, shape, module.weight.detach(), padding)
    return nn.utils.parametrize.register_parametrization(module, "weight", bound)


def sheet_maps(channels: int, height: int, width: int):
    """Index maps between a (C, H, W) layer and its topographic sheet.

    Each position (y, x) owns an n x n tile of the (n*H, n*W) sheet, n =
    ceil(sqrt(C)); channel c sits at (c // n, c % n) of the tile, and tiles in
    odd rows / columns are mirrored so neighbouring tiles meet edge to edge.
    Returns (plane, layer): plane[s] is the flat layer index read by sheet
    cell s (C*H*W for an empty cell, which reads zero); layer[l] is the flat
    sheet index that layer element l reads back.
    """
    n = math.isqrt(channels)
    n = n if n * n == channels else n + 1
    size = channels * height * width
    plane = torch.full((n * height * n * width,), size, dtype=torch.long)
    layer = torch.empty(size, dtype=torch.long)
    for y in range(height):
        for x in range(width):
            for a in range(n):
                for b in range(n):
                    c = (a if y % 2 == 0 else n - 1 - a) * n + (b if x % 2 == 0 else n - 1 - b)
                    if c >= channels:
                        continue
                    sheet = (y * n + a) * (n * width) + x * n + b
                    src = c * height * width + y * width + x
                    plane[sheet] = src
                    layer[src] = sheet
    return n, plane, layer


class LocalSheet(nn.Module):
    """Topographic lateral connection (DynVision's `local` recurrence): the
    channels of each position form a tile of a 2-D cortical sheet, one
    single-channel convolution with reflect padding runs over the sheet, and
    the result is mapped back to channels."""

    def __init__(self, channels: int, height: int, width: int, kernel: int, bias: bool = True):
        super().__init__()
        self.channels, self.height, self.width = channels, height, width
        self.n, plane, layer = sheet_maps(channels, height, width)
        self.padded = self.n * self.n != channels
        self.register_buffer("flat_plane_mapping", plane)
        self.register_buffer("flat_layer_mapping", layer)
        self.conv = nn.Conv2d(1, 1, kernel, padding=kernel // 2, padding_mode="reflect", bias=bias)

    def forward(self, x):
        b = x.shape[0]
        flat = x.reshape(b, -1)
        if self.padded:
            flat = torch.cat([flat, flat.new_zeros(b, 1)], 1)
        sheet = flat[:, self.flat_plane_mapping].view(b, 1, self.n * self.height, self.n * self.width)
        sheet = self.conv(sheet).reshape(b, -1)
        return sheet[:, self.flat_layer_mapping].view(b, self.channels, self.height, self.width)


def parallel_init(cls, *args, **kwargs):
    """A large nn.Linear or nn.Conv2d with torch's default distribution, U(+-1/sqrt(fan_in)),
    drawn by numpy's SFC64 in fixed 1M-value chunks on all threads: AlexNet's 61M weights
    in a third of torch's time on 2 cores; the same values for any thread count, and
    reproducible under torch.manual_seed (the chunk seeds are one draw from torch)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    if torch.empty(0).device.type != "cpu":  # under a meta or GPU default device: torch's own init
        return cls(*args, **kwargs)
    module = cls(*args, device="meta", **kwargs)  # shapes only: torch's own init never runs
    for name, meta in list(module.named_parameters(recurse=False)):
        setattr(module, name, nn.Parameter(torch.empty(meta.shape)))
    bound = 1.0 / math.sqrt(module.weight[0].numel())
    seed = int(torch.randint(0, 2 ** 62, ()))
    chunk = 1 << 20
    jobs = []
    for t in (module.weight, module.bias):
        if t is not None:
            flat = t.data.view(-1).numpy()
            jobs.extend(flat[i:i + chunk] for i in range(0, flat.size, chunk))

    def fill(job):
        index, part = job
        np.random.Generator(np.random.SFC64([seed, index])).random(out=part, dtype=np.float32)
        part *= 2 * bound
        part -= bound

    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(fill, enumerate(jobs)))
    return module


class Bounded(nn.Module):
    """A trainable value kept within its bounds by a reparametrisation of `raw`, never by clamping
    after a step: lo + scale * softplus(raw) (a min), hi - scale * softplus(raw) (a max),
    lo + scale * sigmoid(raw) with scale <= hi - lo (both), plus `shift`, a few float32 ulps
    towards the open side that make the start exact. Calling it gives the value, shape `shape`
    ((C, 1, 1) per channel)."""

    def __init__(self, shape, raw: float, lo=None, hi=None, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.lo, self.hi, self.scale, self.shift = lo, hi, scale, shift
        self.raw = nn.Parameter(torch.full(tuple(shape), float(raw)))

    def forward(self):
        if self.hi is None:
            return self.lo + self.scale * F.softplus(self.raw) + self.shift
        if self.lo is None:
            return self.hi - self.scale * F.softplus(self.raw) + self.shift
        return self.lo + self.scale * torch.sigmoid(self.raw) + self.shift

    def extra_repr(self) -> str:
        return f"lo={self.lo}, hi={self.hi}"
