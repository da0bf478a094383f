"""Convolutions onto a 1 x 1 map as matrix products over the kernel taps they read
(layout.tap_window, ops_window.window_linear): the same values and gradients as F.conv2d."""
import pytest
import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl import layout, lower_layout
from dynvision_dsl.ops_window import window_linear

pytestmark = pytest.mark.backend

# (batch, C, O, H, W, k, stride, padding, dilation, bias): every output map is 1 x 1
SHAPES = [
    (4, 6, 5, 2, 2, 3, 2, 1, 1, True),    # DyRCNNx8's IT.conv in small: taps [1:3, 1:3]
    (1, 6, 5, 2, 2, 3, 2, 1, 1, True),    # batch 1
    (3, 4, 7, 3, 3, 3, 1, 0, 1, False),   # the whole kernel on the whole map, no bias
    (2, 3, 4, 4, 4, 3, 2, 0, 1, True),    # row and column 3 unread
    (2, 3, 4, 3, 3, 5, 3, 2, 1, True),    # kernel larger than the map: taps [2:5, 2:5]
    (2, 3, 4, 5, 5, 3, 4, 1, 2, True),    # dilation 2: pixels [1:4:2, 1:4:2]
    (2, 3, 4, 2, 5, 3, 5, 1, 1, True),    # not square: rows [1:3], columns [1:3]
    (2, 3, 4, 1, 4, 3, 4, 1, 1, True),    # one row read: a single matrix product
    (2, 3, 4, 3, 3, 1, 3, 0, 1, True),    # a 1 x 1 kernel reading pixel (0, 0) of a 3 x 3 map
]


def _case(n, c, o, h, w, k, stride, padding, dilation, bias, layout_=torch.channels_last, dtype=torch.float64):
    x = torch.randn(n, c, h, w, dtype=dtype, requires_grad=True)
    weight = torch.randn(o, c, k, k, dtype=dtype).contiguous(memory_format=layout_).requires_grad_()
    b = torch.randn(o, dtype=dtype, requires_grad=True) if bias else None
    window = layout.tap_window({"k": k, "padding": padding, "dilation": dilation}, (c, h, w), (o, 1, 1))
    return x, weight, b, window


def _grads(out, inputs):
    torch.manual_seed(1)
    return torch.autograd.grad(out, [t for t in inputs if t is not None], torch.randn_like(out))


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
@pytest.mark.parametrize("memory", [torch.channels_last, torch.contiguous_format], ids=["channels_last", "contiguous"])
def test_window_linear_equals_the_convolution_and_its_gradients(shape, memory):
    torch.manual_seed(0)
    n, c, o, h, w, k, stride, padding, dilation, bias = shape
    x, weight, b, window = _case(*shape, layout_=memory)
    want = F.conv2d(x, weight, b, stride, padding, dilation)
    assert want.shape == (n, o, 1, 1)
    got = window_linear(x, weight, b, window.rows, window.cols, window.at, window.dilation)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, g_want in zip(_grads(got, (x, weight, b)), _grads(want, (x, weight, b))):
        torch.testing.assert_close(g, g_want, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the plain path (no WindowLinear) gives the same values
        torch.testing.assert_close(window_linear(x, weight, b, window.rows, window.cols, window.at, window.dilation),
                                   want, rtol=1e-12, atol=1e-12)


def test_window_linear_in_float32_and_gradcheck():
    torch.manual_seed(0)
    x, weight, b, window = _case(4, 16, 9, 2, 2, 3, 2, 1, 1, True, dtype=torch.float32)
    args = (window.rows, window.cols, window.at, window.dilation)
    torch.testing.assert_close(window_linear(x, weight, b, *args), F.conv2d(x, weight, b, 2, 1))
    x, weight, b, window = _case(2, 3, 4, 5, 5, 3, 4, 1, 2, True)
    args = (window.rows, window.cols, window.at, window.dilation)
    assert torch.autograd.gradcheck(lambda x, w, b: window_linear(x, w, b, *args), (x, weight, b))


def test_window_linear_double_backward():
    """WindowLinear's backward is made of differentiable ops: second derivatives (a gradient
    penalty, Hessian-vector products) equal the convolution's."""
    torch.manual_seed(0)
    for case in ((2, 3, 5, 2, 2, 3, 2, 1, 1, True), (2, 3, 4, 5, 5, 3, 4, 1, 2, False)):
        x, weight, b, window = _case(*case)
        args = (window.rows, window.cols, window.at, window.dilation)
        inputs = (x, weight) if b is None else (x, weight, b)
        assert torch.autograd.gradgradcheck(lambda *v: window_linear(*v[:2], v[2] if len(v) > 2 else None, *args),
                                            inputs)


def test_tap_window_reads_the_taps_over_the_map():
    a = {"k": 3, "padding": 1, "dilation": 1}
    w = layout.tap_window(a, (8, 2, 2), (4, 1, 1))
    assert (w.rows, w.cols, w.at, w.taps) == ((1, 3), (1, 3), (0, 0), 4)
    w = layout.tap_window({"k": 5, "padding": 2, "dilation": 1}, (8, 3, 3), (4, 1, 1))
    assert (w.rows, w.at, w.taps) == ((2, 5), (0, 0), 9)
    w = layout.tap_window({"k": 3, "padding": 1, "dilation": 2}, (8, 5, 5), (4, 1, 1))
    assert (w.rows, w.at, w.dilation) == ((1, 3), (1, 1), 2)
    assert layout.tap_window(a, (8, 2, 2), (4, 2, 2)) is None  # a larger output
    assert layout.tap_window({**a, "groups": 2}, (8, 2, 2), (4, 1, 1)) is None
    assert layout.tap_window({"k": 1, "padding": 1}, (8, 1, 1), (4, 1, 1)) is None  # only padding under it


# three convolutions onto 1 x 1 maps: all nine taps of a 3 x 3 map (B), the taps [2:5, 2:5] of a
# padded 5 x 5 kernel (C, whose ReLU runs in place on it), and B's recurrence from a 1 x 1 map (the centre tap's F.linear)
WINDOWS = """
model Windows
param dt = 1 ms
time { dt = dt  steps = 3 }
input image [3, 6, 6]
area A [4] { r = relu(input) }
area B [6] {
  param tau = 2 ms
  tau * dr/dt = -r + relu(input)
}
area C [5] { r = relu(input) }
image -> A : conv(3, stride=2)
A -> B : conv(3, stride=2, padding=0)
B -> B : lateral("full", 3), delay 1 ms
A -> C : conv(5, stride=3, padding=2)
readout C : avgpool | linear(2)
readout B : avgpool | linear(2) as b_out
"""


def _no_windows(monkeypatch):
    monkeypatch.setattr(lower_layout, "op_tap", lambda kind, a, s, o: None)
    monkeypatch.setattr(layout, "op_tap", lambda kind, a, s, o: None)


def test_a_spec_with_windowed_convolutions_equals_its_plain_convolutions(monkeypatch):
    torch.manual_seed(0)
    model = dd.compile(WINDOWS)
    src = model.program.steps[-1].source
    assert src.count("window_linear(") == 2 and "F.linear(" in src
    assert "(0, 3), (0, 3), (0, 0), 1)  # A_to_B.conv: kernel taps [0:3, 0:3] at input pixels [0:3, 0:3]\n" in src
    assert ("(2, 5), (2, 5), (0, 0), 1)  # A_to_C.conv: kernel taps [2:5, 2:5] at input pixels [0:3, 0:3]"
            ", the other taps on the zero padding\n") in src
    assert "C_r = C_from_A.relu_()" in src  # a fresh map (lean_training_ops): the ReLU writes into it
    _no_windows(monkeypatch)
    plain = dd.compile(WINDOWS)
    assert not any("window_linear" in st.source or "F.linear" in st.source for st in plain.program.steps)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 3, 6, 6)
    outs = []
    for m in (model, plain):
        m.zero_grad()
        logits = m(x)
        sum(v.square().sum() for v in logits.values()).backward()
        outs.append((logits, {n: p.grad.clone() for n, p in m.named_parameters()}))
    for name in outs[0][0]:
        torch.testing.assert_close(outs[0][0][name], outs[1][0][name], rtol=1e-5, atol=1e-6)
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(grad, outs[1][1][name], rtol=1e-4, atol=1e-6)


def test_the_standalone_module_runs_the_windows_alike():
    torch.manual_seed(0)
    from valid_helpers import standalone_of

    model = dd.compile(WINDOWS).eval()
    alone = standalone_of(WINDOWS, model).eval()
    assert alone.A_to_B.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 3, 6, 6)
    with torch.no_grad():
        for name, value in model(x).items():
            assert torch.equal(alone(x)[name], value)
