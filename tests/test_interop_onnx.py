"""ONNX export: the unrolled graph checked against onnxruntime (small sizes and steps)."""
import numpy as np
import pytest
import torch

from conftest import ROOT

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import dynvision_dsl as dd  # noqa: E402
from dynvision_dsl.interop import InteropError  # noqa: E402
from dynvision_dsl.interop.onnx import OPSET, export  # noqa: E402

CASES = {  # zoo specs at small sizes: recurrence, feedback (additive and multiplicative), delays, idle steps
    "dyrcnn_x2": {"size": 16, "steps": 5, "feedback": "mul", "t_feedback": "4 ms"},
    "adaptive_x4": {"size": 16, "steps": 4},
    "dyrcnn_x4": {"size": 16, "steps": 4, "recurrence": "local", "feedback": "add"},
}


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    model = dd.compile_file(ROOT / "specs" / f"{name}.dyn", CASES[name]).eval()
    path = export(model, tmp_path / "m.onnx")
    x = torch.rand(3, *model.input_shape)  # another batch size than the traced one
    with torch.no_grad():
        want = model(x).numpy()
    got = _run(path, x)
    assert got.shape == want.shape == (3, model.steps, model.classes)
    assert np.abs(got - want).max() < 1e-4
    assert onnx.load(str(path)).opset_import[0].version == OPSET


def test_steps_override_and_refusal_to_overwrite(tmp_path):
    torch.manual_seed(0)
    model = dd.compile_file(ROOT / "tests" / "interop_specs" / "leaky_nir.dyn").eval()
    path = export(model, tmp_path / "m.onnx", steps=3)
    x = torch.rand(1, *model.input_shape)
    with torch.no_grad():
        want = model(x.unsqueeze(1).expand(-1, 3, -1, -1, -1)).numpy()
    assert np.abs(_run(path, x) - want).max() < 1e-4
    with pytest.raises(FileExistsError):
        export(model, path)
    with pytest.raises(InteropError, match="steps must be at least 1"):
        export(model, tmp_path / "n.onnx", steps=-1)


def test_cli_export_onnx(tmp_path, capsys):
    from dynvision_dsl.cli import main

    spec = ROOT / "tests" / "interop_specs" / "leaky_nir.dyn"
    out = tmp_path / "m.onnx"
    assert main(["export", str(spec), "--to", "onnx", "-o", str(out), "--steps", "2"]) == 0
    torch.manual_seed(0)
    model = dd.compile_file(spec).eval()
    x = torch.rand(2, *model.input_shape)
    with torch.no_grad():
        want = model(x.unsqueeze(1).expand(-1, 2, -1, -1, -1)).numpy()
    assert np.abs(_run(out, x) - want).max() < 1e-4


def test_idle_steps_are_unrolled_too(tmp_path):
    spec = (ROOT / "tests" / "interop_specs" / "leaky_nir.dyn").read_text().replace(
        "time { dt = 1 ms  steps = steps }", "time { dt = 1 ms  steps = steps  idle = 3 }")
    torch.manual_seed(0)
    model = dd.compile(spec).eval()
    x = torch.rand(2, *model.input_shape)
    with torch.no_grad():
        want = model(x).numpy()
    got = _run(export(model, tmp_path / "m.onnx"), x)
    assert got.shape == (2, model.steps, 3) and np.abs(got - want).max() < 1e-4
