"""ONNX export: the model unrolled for its steps (idle steps included) into one static graph.

The graph takes a static image (batch, C, H, W), shown for `steps` steps, and returns the
logits (batch, steps, classes); the batch dimension stays dynamic. Opset `OPSET`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from . import InteropError

OPSET = 17  # every operator the generated step functions use exists in opset 17 (Lerp is decomposed)


class Unrolled(nn.Module):
    """A compiled model seen by the tracer: a static image shown for `steps` steps, logits out."""

    def __init__(self, model, steps: int):
        super().__init__()
        self.model, self.steps = model, steps

    def forward(self, image):
        if getattr(self.model, "input_transform", None) is not None:  # the normalisation it was trained with
            image = self.model.input_transform(image)
        frames = image.unsqueeze(1).expand(-1, self.steps, -1, -1, -1)
        return self.model.simulate(frames)[0]


def export(model, path: str | Path, steps: int | None = None, overwrite: bool = False,
           opset: int = OPSET) -> Path:
    """Write `model` (a compiled DynModel) as an ONNX file unrolled for `steps` (default: the
    spec's); inputs: the spec's input name, (batch, C, H, W), normalised in the graph when the
    model has an `input_transform`; output `logits` (batch, steps, classes)."""
    from ..util.files import atomic_target

    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the suite installs it
        raise InteropError("ONNX export needs the 'onnx' package: pip install 'dynvision-dsl[onnx]'") from exc
    steps = int(steps or model.steps)
    if steps < 1:
        raise InteropError(f"steps must be at least 1, got {steps}")
    model.require("ONNX export")  # one named graph input and one logits output
    wrapped = Unrolled(model, steps).eval()
    example = torch.zeros(1, *model.input_shape)
    path = Path(path)
    with atomic_target(path, overwrite) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the shape checks it freezes
        torch.onnx.export(wrapped, (example,), tmp, dynamo=False, opset_version=opset,
                          input_names=[model.input_name], output_names=["logits"],
                          dynamic_axes={model.input_name: {0: "batch"}, "logits": {0: "batch"}})
        onnx.checker.check_model(tmp)
    return path
