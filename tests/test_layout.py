"""Memory layout by map size (layout.py), centre-tap convolutions on 1 x 1 maps and weight
norm computed once per run: same values as plain channels-last / conv / per-step weight norm."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl import layout, lower_layout

pytestmark = pytest.mark.backend

# a 1 x 1 map: both convolutions see only their centre tap; the recurrence is weight-normed
CENTRE = """
model CentreTap
param dt = 1 ms
time { dt = dt  steps = 4 }
input image [3, 1, 1]
area A [5] {
  param tau = 2 ms
  tau * dr/dt = -r + relu(input)
}
image -> A : conv(3)
A -> A : conv(3, bias=false, weightnorm=true), delay 1 ms
readout A : avgpool | linear(2)
"""


def test_channels_last_from_8x8_up():
    assert layout.channels_last((64, 8, 8)) and layout.channels_last((3, 32, 32))
    assert not layout.channels_last((512, 4, 4)) and not layout.channels_last((529, 1, 1))
    assert not layout.channels_last((10,))


def test_from_a_1x1_map_the_window_is_one_tap_ungrouped_and_on_the_input():
    """The tap lower_layout's F.linear reads from a 1 x 1 map: tap_window's one tap."""
    a = {"k": 3, "padding": 1, "dilation": 1, "groups": 1}

    def tap(a, s=(8, 1, 1)):
        w = layout.tap_window(a, s, (4, 1, 1))
        return None if w is None else (w.rows[0], w.cols[0], w.taps)
    assert tap(a) == (1, 1, 1)
    assert tap({**a, "k": 5, "padding": 2}) == (2, 2, 1)
    assert tap({**a, "padding": 0}) == (0, 0, 1)
    assert tap(a, (8, 2, 2)) == (1, 1, 4)  # stride 2 from 2 x 2: four taps (window_linear)
    assert tap({**a, "groups": 4}) is None
    assert tap({**a, "padding": 1, "dilation": 2}) is None  # no tap on the input


def test_adapt_runs_its_conv_on_the_smaller_map():
    # a shrinking adapt resizes first (lower_layout.resize_first): its 1 x 1 conv runs on 2 x 2
    assert layout.contiguous_input("adapt", {}, (64, 32, 32), (256, 2, 2))
    assert layout.contiguous_input("adapt", {}, (64, 2, 2), (256, 32, 32))  # growing: conv, then resize
    assert not layout.contiguous_input("adapt", {}, (64, 16, 16), (256, 8, 8))
    assert not layout.contiguous_input("adapt", {}, (64, 4, 4), (64, 2, 2))  # no conv at all


SHRINK = """
model Shrink
param dt = 1 ms
time { dt = dt  steps = 3 }
input image [3, 18, 18]
area A [4] { r = input }
area B [6] { r = input }
image -> A : conv(3)
A -> B : conv(3, stride=4)
A -> B : adapt as skip
readout B : avgpool | linear(2)
"""


def test_a_shrinking_adapt_resized_first_equals_conv_then_resize(monkeypatch):
    # 18 x 18 -> 5 x 5 is no whole factor (a whole one runs as a strided conv: ops.adapt_stride)
    torch.manual_seed(0)
    model = dd.compile(SHRINK).eval()
    src = model.program.steps[-1].source
    assert src.index("F.interpolate") < src.index("self.skip.conv(")
    monkeypatch.setattr(lower_layout, "shrinks", lambda s, o: False)
    plain = dd.compile(SHRINK).eval()
    src = plain.program.steps[-1].source
    assert src.index("F.interpolate") > src.index("self.skip.conv(")
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 3, 18, 18)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=1e-6, atol=1e-7)


def test_zoo_x8_weights_are_channels_last_only_on_large_maps():
    text = open("specs/dyrcnn_x8.dyn").read()
    model = dd.compile(text, {"size": 64, "steps": 3, "classes": 10})
    cl = torch.channels_last
    assert model.V1.conv.weight.is_contiguous(memory_format=cl)  # 32 x 32
    assert model.V4.conv.weight.is_contiguous(memory_format=cl)  # 2 x 2: gemm_conv's [O, k*k*C] view
    assert model.IT.conv2.weight.is_contiguous(memory_format=cl)  # centre tap: a unit-stride tap slice
    assert "F.linear" in model.program.steps[-1].source


def _no_centre_tap(monkeypatch):
    monkeypatch.setattr(lower_layout, "op_tap", lambda kind, a, s, o: None)
    monkeypatch.setattr(layout, "op_tap", lambda kind, a, s, o: None)


LATERAL = CENTRE.replace("conv(3, bias=false, weightnorm=true)", 'lateral("full", 5)')


@pytest.mark.parametrize("text", [CENTRE, LATERAL], ids=["conv", "lateral"])
def test_centre_tap_equals_the_padded_convolution(monkeypatch, text):
    torch.manual_seed(0)
    model = dd.compile(text).eval()
    assert model.program.steps[-1].source.count("F.linear(") == 2  # input conv and recurrence
    _no_centre_tap(monkeypatch)
    plain = dd.compile(text).eval()
    assert not any("F.linear" in st.source for st in plain.program.steps)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(3, 4, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=1e-6, atol=1e-7)
        assert not torch.equal(model(x), model(x.flip(0)))  # the recurrence and input reach the output


def test_weight_norm_runs_once_per_run_with_the_same_gradients():
    torch.manual_seed(0)
    model = dd.compile(CENTRE)
    norm = model.A_to_A.conv
    calls = []
    norm.parametrizations.weight[0].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 4, 3, 1, 1)
    model.zero_grad()
    model.simulate(x)[0].square().sum().backward()
    assert len(calls) == 1
    cached = {n: p.grad.clone() for n, p in model.named_parameters()}
    calls.clear()
    model.zero_grad()
    model._simulate(x, (), 0)[0].square().sum().backward()  # the per-step recomputation
    assert len(calls) > 1
    for n, p in model.named_parameters():
        torch.testing.assert_close(cached[n], p.grad, rtol=1e-5, atol=1e-7)


def test_the_standalone_module_runs_the_centre_tap_alike():
    torch.manual_seed(0)
    from valid_helpers import standalone_of

    model = dd.compile(CENTRE).eval()
    alone = standalone_of(CENTRE, model).eval()
    x = torch.randn(2, 4, 3, 1, 1)
    with torch.no_grad():
        assert torch.equal(alone(x), model(x))
