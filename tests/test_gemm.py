"""Convolutions onto small maps as im2col + one matrix product (layout.gemm_conv_op,
ops_gemm.gemm_conv): the same values and gradients as F.conv2d, in the compiled models too."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl import layout, lower_layout
from dynvision_dsl.ops_gemm import gemm_conv

pytestmark = pytest.mark.backend
ROOT = Path(__file__).resolve().parents[1]

# (batch, C, O, map, k, stride, padding, dilation, bias)
SHAPES = [
    (4, 6, 5, 4, 3, 2, 1, 1, True),    # CorNetRT's IT.conv in small: 4 x 4 -> 2 x 2
    (1, 6, 5, 4, 3, 2, 1, 1, True),    # batch 1 (F.conv2d itself)
    (3, 8, 8, 2, 3, 1, 1, 1, False),   # IT.conv2: same-size on 2 x 2, no bias
    (2, 4, 6, 4, 1, 2, 0, 1, False),   # a 1 x 1 kernel, stride 2 (CordsNet's skips)
    (2, 3, 4, 4, 3, 1, 1, 2, True),    # dilation 2: 4 x 4 -> 2 x 2
    (2, 3, 4, 5, 3, 2, 0, 1, True),    # no padding, a row and column unread
    (2, 3, 4, 6, 5, 1, 2, 1, True),    # a 5 x 5 kernel on a larger map
]


def _case(n, c, o, size, k, stride, padding, dilation, bias, weight_layout=torch.channels_last,
          input_layout=torch.contiguous_format, dtype=torch.float64):
    x = torch.randn(n, c, size, size, dtype=dtype).contiguous(memory_format=input_layout).requires_grad_()
    w = torch.randn(o, c, k, k, dtype=dtype).contiguous(memory_format=weight_layout).requires_grad_()
    b = torch.randn(o, dtype=dtype, requires_grad=True) if bias else None
    return x, w, b, (stride, padding, dilation)


def _grads(out, inputs):
    torch.manual_seed(1)
    return torch.autograd.grad(out, [t for t in inputs if t is not None], torch.randn(out.shape, dtype=out.dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
@pytest.mark.parametrize("layouts", [(torch.channels_last, torch.contiguous_format),
                                     (torch.contiguous_format, torch.channels_last)], ids=["cl_weight", "cl_input"])
def test_gemm_conv_equals_the_convolution_and_its_gradients(shape, layouts):
    torch.manual_seed(0)
    x, w, b, conv = _case(*shape, *layouts)
    want = F.conv2d(x, w, b, *conv)
    got = gemm_conv(x, w, b, *conv)
    assert got.shape == want.shape and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, g_want in zip(_grads(got, (x, w, b)), _grads(want, (x, w, b))):
        torch.testing.assert_close(g, g_want, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # without autograd recording: the same values
        torch.testing.assert_close(gemm_conv(x, w, b, *conv), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[3], SHAPES[4]], ids=["s2", "same", "k1", "dilated"])
@pytest.mark.parametrize("weight_layout", [torch.channels_last, torch.contiguous_format], ids=["cl", "contiguous"])
def test_gemm_conv_gradcheck(shape, weight_layout):  # a contiguous weight: a weight norm's, multiplied in its own order
    torch.manual_seed(0)
    x, w, b, conv = _case(*shape, weight_layout=weight_layout)
    inputs = (x, w) if b is None else (x, w, b)
    assert torch.autograd.gradcheck(lambda x, w, b=None: gemm_conv(x, w, b, *conv), inputs)


def test_a_batch_of_one_runs_the_convolution(monkeypatch):
    from dynvision_dsl import ops_gemm

    x, w, b, conv = _case(1, 6, 5, 4, 3, 2, 1, 1, True)
    monkeypatch.setattr(ops_gemm, "_gemm_value", lambda *a: pytest.fail("batch 1 took the matrix product"))
    torch.testing.assert_close(gemm_conv(x, w, b, *conv), F.conv2d(x, w, b, *conv), rtol=0, atol=0)
    with pytest.raises(pytest.fail.Exception, match="batch 1 took"):
        gemm_conv(torch.cat([x, x]), w, b, *conv)


def test_gemm_conv_on_meta_traced_and_in_bf16_autocast():
    torch.manual_seed(0)
    x, w, b, conv = _case(4, 16, 8, 4, 3, 2, 1, 1, True, dtype=torch.float32)
    meta = gemm_conv(x.to("meta"), w.to("meta"), b.to("meta"), *conv)  # the runtime's cost probe
    assert meta.device.type == "meta" and meta.shape == (4, 8, 2, 2)
    w0, b0 = w.detach(), b.detach()
    traced = torch.jit.trace(lambda x: gemm_conv(x, w0, b0, *conv), x.detach())
    assert "aten::_convolution" in str(traced.graph)  # tracers (ONNX export) see the conv itself
    torch.testing.assert_close(traced(x.detach()), F.conv2d(x, w, b, *conv).detach())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = gemm_conv(x, w, b, *conv), F.conv2d(x, w, b, *conv)
    assert got.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=5e-2)
    grads = _grads(got.float(), (x, w, b))
    assert all(g.dtype == torch.float32 for g in grads)
    for g, g_want in zip(grads, _grads(F.conv2d(x, w, b, *conv), (x, w, b))):
        torch.testing.assert_close(g, g_want, rtol=3e-2, atol=5e-2)


def test_the_rule_takes_small_maps_and_leaves_the_rest():
    conv = {"k": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1}
    s2 = {**conv, "stride": 2}
    assert layout.gemm_conv_op("conv", conv, (512, 2, 2), (512, 2, 2))[1] == layout.Gemm(3, 1, 1, 1)
    assert layout.gemm_conv_op("conv", s2, (256, 4, 4), (512, 2, 2))[1].stride == 2
    assert layout.gemm_conv_op("lateral", {"kind": "full", "k": 3}, (256, 2, 2), (256, 2, 2)) == ("conv", layout.Gemm(3, 1, 1, 1))
    skip = {**conv, "k": 1, "stride": 2, "padding": 0}
    assert layout.gemm_conv_op("conv", skip, (128, 8, 8), (256, 4, 4)) is not None  # a 1 x 1 kernel onto 4 x 4
    assert layout.gemm_conv_op("conv", conv, (256, 4, 4), (256, 4, 4)) is None  # 4 x 4 with a 3 x 3 kernel: even
    assert layout.gemm_conv_op("conv", skip, (128, 16, 16), (256, 8, 8)) is None  # channels-last from 8 x 8
    assert layout.gemm_conv_op("conv", s2, (256, 2, 2), (529, 1, 1)) is None  # 1 x 1: window_linear
    assert layout.gemm_conv_op("conv", {**conv, "groups": 4}, (512, 2, 2), (512, 2, 2)) is None
    assert layout.gemm_conv_op("conv", conv, (8, 2, 2), (8, 2, 2)) is not None  # few channels too
    assert layout.gemm_conv_op("lateral", {"kind": "depthwise", "k": 3}, (256, 2, 2), (256, 2, 2)) is None
    assert not layout.contiguous_input("conv", conv, (512, 2, 2), (512, 2, 2))  # gemm_conv lays out its own input
    assert layout.contiguous_input("conv", conv, (256, 4, 4), (256, 4, 4))


# B's conv and recurrence, C's skip (a 1 x 1 kernel) and D's dilated conv run as gemm_conv onto 2 x 2
GEMM = """
model Gemm
param dt = 1 ms
time { dt = dt  steps = 3 }
input image [3, 8, 8]
area A [128] { r = relu(input) }
area B [32] {
  param tau = 2 ms
  tau * dr/dt = -r + relu(input)
}
area C [8] { r = relu(input) }
area D [8] { r = relu(input) }
image -> A : conv(3, stride=2)
A -> B : conv(3, stride=2)
B -> B : lateral("full", 3), delay 1 ms
A -> C : conv(1, stride=2, bias=false)
A -> D : conv(3, padding=1, dilation=2)
readout B : avgpool | linear(2)
readout D : avgpool | linear(2) as d_out
readout C : avgpool | linear(2) as c_out
"""


def _no_gemm(monkeypatch):
    monkeypatch.setattr(lower_layout, "gemm_conv_op", lambda kind, a, s, o: None)
    monkeypatch.setattr(layout, "gemm_conv_op", lambda kind, a, s, o: None)


def _logits_and_grads(model, x):
    model.zero_grad()
    logits = model(x)
    logits = logits if isinstance(logits, dict) else {"logits": logits}
    sum(v.square().sum() for v in logits.values()).backward()
    return logits, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(model, plain, x):
    plain.load_state_dict(model.state_dict())
    (got, got_grads), (want, want_grads) = _logits_and_grads(model, x), _logits_and_grads(plain, x)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-5)
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-5)


def test_a_spec_with_gemm_convolutions_equals_its_plain_convolutions(monkeypatch):
    torch.manual_seed(0)
    model = dd.compile(GEMM)
    src = model.program.steps[-1].source
    assert src.count("gemm_conv(") == 4, src
    assert "# A_to_B.conv: im2col and one matrix product onto the 2 x 2 map (weight [32, 3*3*128])" in src
    assert "gemm_conv(A_r, A_to_D_conv_weight, A_to_D_conv_bias, 1, 1, 2)" in src
    assert "C_r = C_from_A.relu_()" in src  # a fresh map (lean_training_ops): the ReLU writes into it
    assert model.A_to_B.conv.weight.is_contiguous(memory_format=torch.channels_last)
    _no_gemm(monkeypatch)
    plain = dd.compile(GEMM)
    assert not any("gemm_conv" in st.source for st in plain.program.steps)
    _assert_same(model, plain, torch.randn(2, 3, 3, 8, 8))


def test_the_standalone_module_runs_gemm_alike():
    torch.manual_seed(0)
    from valid_helpers import standalone_of

    model = dd.compile(GEMM).eval()
    alone = standalone_of(GEMM, model).eval()
    assert alone.A_to_B.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 3, 8, 8)
    with torch.no_grad():
        for name, value in model(x).items():
            assert torch.equal(alone(x)[name], value)


ZOO = [("cornet_rt", {"size": 64, "steps": 3, "classes": 5}, (2, 3, 3, 64, 64)),
       ("cordsnet", {"size": 64, "steps": 3, "classes": 5, "idle_steps": 1}, (2, 3, 3, 64, 64)),
       ("dyrcnn_x8", {"size": 64, "steps": 3, "classes": 5}, (2, 3, 3, 64, 64))]


@pytest.mark.slow
@pytest.mark.parametrize("spec, params, shape", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_models_give_the_plain_logits_and_gradients(monkeypatch, spec, params, shape):
    text = (ROOT / "specs" / f"{spec}.dyn").read_text()
    torch.manual_seed(0)
    model = dd.compile(text, params)
    assert any("gemm_conv(" in st.source for st in model.program.steps)
    _no_gemm(monkeypatch)
    plain = dd.compile(text, params)
    _assert_same(model, plain, torch.randn(*shape))


def test_onnx_export_sees_the_convolutions(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from dynvision_dsl.interop.onnx import export

    torch.manual_seed(0)
    model = dd.compile_file(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": 16, "steps": 3}).eval()
    assert any("gemm_conv(" in st.source for st in model.program.steps)  # IT's convs onto 2 x 2
    path = export(model, tmp_path / "m.onnx")
    x = torch.rand(3, *model.input_shape)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert (torch.from_numpy(got) - model(x)).abs().max() < 1e-4


def test_auto_recompute_probes_gemm_convs_on_meta_and_keeps_the_gradients(monkeypatch):
    torch.manual_seed(0)
    model = dd.compile(GEMM)
    model.recompute = "auto"  # segments sized from a meta-device probe of the steps (runtime._probe_costs)
    _no_gemm(monkeypatch)
    _assert_same(model, dd.compile(GEMM), torch.randn(2, 3, 3, 8, 8))
    assert model._step_costs  # the probe ran
