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


def sheet_layout(channels: int):
    """Channel -> (row, col) of the tile on a sqrt(C) x sqrt(C) topographic sheet.

    Tiles run row by row; odd rows run right to left, so neighbouring channels
    stay neighbours on the sheet (a boustrophedon layout).
    """
    side = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / side)
    order = []
    for r in range(rows):
        cols = range(side) if r % 2 == 0 else range(side - 1, -1, -1)
        order.extend((r, c) for c in cols)
    return side, rows, order[:channels]


class LocalSheet(nn.Module):
    """Topographic lateral connection: channels laid out as tiles of a 2-D
    cortical sheet, one single-channel convolution over the sheet (reflect
    padding), then mapped back to channels."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.channels = channels
        self.kernel = kernel
        self.conv = nn.Conv2d(1, 1, kernel, padding=kernel // 2, padding_mode="reflect")
        side, rows, order = sheet_layout(channels)
        self.side, self.rows = side, rows
        self.register_buffer("tile_row", torch.tensor([r for r, _ in order]), persistent=False)
        self.register_buffer("tile_col", torch.tensor([c for _, c in order]), persistent=False)

    def forward(self, x):
        b, c, h, w = x.shape
        sheet = x.new_zeros(b, self.rows, self.side, h, w)
        sheet[:, self.tile_row, self.tile_col] = x
        sheet = sheet.permute(0, 1, 3, 2, 4).reshape(b, 1, self.rows * h, self.side * w)
        sheet = self.conv(sheet)
        sheet = sheet.reshape(b, self.rows, h, self.side, w).permute(0, 1, 3, 2, 4)
        return sheet[:, self.tile_row, self.tile_col]
