"""Interchange with other tools: NIR graphs (`nir`), ONNX (`onnx`) and Brain-Score (`brainscore`).

Each module needs its optional extra (`pip install 'dynvision-dsl[nir]'`, `[onnx]`,
`[brainscore]`) and imports it only when called, so the core never depends on them.
"""


class InteropError(ValueError):
    """A model or file that the target format cannot express; the message names the culprit and the fix."""
