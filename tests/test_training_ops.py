"""Backend: the training-memory ops (ops_autograd) and the strided adapt. Each keeps the values
and gradients of the plain torch code it replaces and saves less for backward."""
import operator

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl.ops import adapt_stride
from dynvision_dsl.backend.passes.lean_training_ops import lean_training_ops
from dynvision_dsl.ops_autograd import add_into, euler_relu_, helper_sources, lean_max_pool2d
from dynvision_dsl.pipeline import build
from dynvision_dsl.render import render

from conftest import ROOT

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("one_thread")]
X4 = (ROOT / "specs" / "dyrcnn_x4.dyn").read_text()


def _saved_dtypes(fn, *args):
    """The dtypes of every tensor autograd packs for backward while `fn(*args)` runs."""
    dtypes = []

    def pack(t):
        dtypes.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    return out, dtypes


def _maps(*shape, channels_last=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(*shape, generator=g))  # ReLU output: many tied zeros in a window
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("pool", [(3, 2, 1), (2, None, 0)])
def test_lean_max_pool_has_torch_values_and_gradients_bit_for_bit(channels_last, pool):
    x = _maps(2, 5, 12, 12, channels_last=channels_last).requires_grad_()
    y = x.detach().clone().requires_grad_()
    a, b = lean_max_pool2d(x, *pool), F.max_pool2d(y, *pool)
    assert torch.equal(a, b)
    g = torch.randn_like(a)
    a.backward(g), b.backward(g)
    assert torch.equal(x.grad, y.grad)


def test_lean_max_pool_saves_no_index_map():
    x = _maps(2, 4, 8, 8).requires_grad_()
    _, plain = _saved_dtypes(F.max_pool2d, x, 3, 2, 1)
    _, lean = _saved_dtypes(lean_max_pool2d, x, 3, 2, 1)
    assert torch.int64 in plain          # torch keeps the argmax indices
    assert lean == [torch.float32]       # only the input
    with torch.no_grad():                # no autograd: the plain op
        assert torch.equal(lean_max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1))


def test_euler_relu_writes_into_drive_and_keeps_lerp_relu_values_and_gradients():
    prev, drive = (torch.randn(2, 3, 6, 6, requires_grad=True) for _ in range(2))
    p2, d2 = (t.detach().clone().requires_grad_() for t in (prev, drive))
    fresh = drive * 1.0                  # a non-leaf map the step made
    out, saved = _saved_dtypes(euler_relu_, prev, fresh, 0.4)
    assert out.data_ptr() == fresh.data_ptr()      # written in place
    assert len(saved) == 1                         # only the output
    ref = torch.relu(torch.lerp(p2, d2 * 1.0, 0.4))
    assert torch.equal(out, ref)
    g = torch.randn_like(out)
    out.backward(g), ref.backward(g)
    assert torch.equal(prev.grad, p2.grad) and torch.equal(drive.grad, d2.grad)


def test_euler_relu_with_a_broadcast_drive_makes_a_new_map():
    prev, drive = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 1, 1)
    before = drive.clone()
    assert torch.equal(euler_relu_(prev, drive, 0.4), torch.relu(torch.lerp(prev, drive, 0.4)))
    assert torch.equal(drive, before)


def test_add_into_writes_into_a_when_shapes_agree():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    expected = a + b
    assert add_into(a, b).data_ptr() == a.data_ptr() and torch.equal(a, expected)
    small = torch.randn(3, 1, 1)
    assert torch.equal(add_into(small, b), small + b) and add_into(small, b).shape == b.shape


def test_adapt_stride_only_for_whole_factor_shrinks():
    assert adapt_stride((36, 64, 64), (121, 16, 16)) == 4
    assert adapt_stride((8, 32, 16), (4, 8, 8)) == (4, 2)
    assert adapt_stride((8, 16, 16), (4, 16, 16)) is None   # no resize
    assert adapt_stride((8, 8, 8), (4, 16, 16)) is None     # growing: conv, then resize
    assert adapt_stride((8, 12, 12), (4, 5, 5)) is None     # not a whole factor


@pytest.mark.parametrize("size,out", [((16, 16), (4, 4)), ((12, 8), (3, 4))])
def test_strided_one_by_one_conv_is_conv_then_nearest_resize(size, out):
    conv = torch.nn.Conv2d(5, 7, 1)
    x = torch.randn(2, 5, *size, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    stride = (size[0] // out[0], size[1] // out[1])
    a = F.conv2d(x, conv.weight, conv.bias, stride=stride)
    b = F.interpolate(F.conv2d(x2, conv.weight, conv.bias), size=out, mode="nearest")
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)  # the same dot products; a kernel may order them apart
    (wa, ba, xa) = torch.autograd.grad(a.square().sum(), (conv.weight, conv.bias, x))
    (wb, bb, xb) = torch.autograd.grad(b.square().sum(), (conv.weight, conv.bias, x2))
    for u, v in ((wa, wb), (ba, bb), (xa, xb)):
        assert torch.allclose(u, v, rtol=1e-6, atol=1e-6)


def _plain_x4(m, x):
    """DyRCNNx4 (default params) in plain torch with the model's weights: F.max_pool2d, the
    adapt skips as a 1 x 1 conv then nearest resize, relu(lerp(...)), out-of-place sums."""
    areas, r, hist, logits = ("V1", "V2", "V4", "IT"), {}, {a: [] for a in ("V1", "V2", "V4", "IT")}, []
    skip = lambda conv, v, like: F.interpolate(F.conv2d(v, conv.weight, conv.bias), size=like.shape[-2:])  # noqa: E731
    for t in range(x.shape[1]):
        def drive(a, ff):
            late = hist[a][-3] if len(hist[a]) >= 3 else None   # recurrence: 6 ms = 3 steps
            return ff if late is None else ff + getattr(m, a).recurrence.conv(late)

        def leak(a, i):
            return torch.relu(0.4 * i if a not in r else torch.lerp(r[a], i, 0.4))

        v1 = leak("V1", drive("V1", m.V1.conv(x[:, t])))
        v2 = leak("V2", drive("V2", m.V2.conv(F.max_pool2d(v1, 3, 2, 1))))
        v4_ff = m.V4.conv(F.max_pool2d(v2, 3, 2, 1))
        v4 = leak("V4", drive("V4", v4_ff) + skip(m.addskip_V4.conv, v1, v4_ff))
        it_ff = m.IT.conv(v4)
        it = leak("IT", drive("IT", it_ff) + skip(m.addskip_IT.conv, v2, it_ff))
        for a, v in zip(areas, (v1, v2, v4, it)):
            r[a] = v
            hist[a].append(v)
        logits.append(getattr(m.classifier, "2")(torch.flatten(F.adaptive_avg_pool2d(it, 1), 1)))
    return torch.stack(logits, 1)


def test_x4_training_step_matches_plain_torch():
    params = {"size": 32, "steps": 6}
    model = dd.compile(X4, params).train()
    assert "interpolate" not in model.code and model.addskip_V4.conv.stride == (4, 4)
    x = torch.randn(2, 6, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    out = model(x)
    with torch.no_grad():  # equal bit for bit on the machines measured; a conv kernel may round apart
        assert torch.allclose(out, _plain_x4(model, x), rtol=1e-6, atol=1e-7)
    named = dict(model.named_parameters())
    ours = torch.autograd.grad(out.sum(), list(named.values()))
    plain = torch.autograd.grad(_plain_x4(model, x).sum(), list(named.values()))
    for name, a, b in zip(named, ours, plain):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6 * b.abs().max().item()), name


def test_x4_saves_no_int64_for_backward():
    model = dd.compile(X4, {"size": 16, "steps": 4}).train()
    _, dtypes = _saved_dtypes(model, torch.randn(1, 4, 3, 16, 16))
    assert torch.int64 not in dtypes
    plain = dd.compile(X4, {"size": 16, "steps": 4}, optimize=False).train()
    assert torch.int64 in _saved_dtypes(plain, torch.randn(1, 4, 3, 16, 16))[1]


def test_standalone_module_carries_the_ops_and_trains_like_in_process(tmp_path):
    params = {"size": 16, "steps": 5}
    program, _ = build(X4, params)
    source = render(program)
    for name in ("class LeanMaxPool2d", "def lean_max_pool2d", "class EulerRelu", "def euler_relu_",
                 "def add_into", "def _traced"):
        assert source.count(name) == 1, name
    namespace = {}
    exec(compile(source, str(tmp_path / "x4.py"), "exec"), namespace)  # noqa: S102 - our own output
    standalone, model = namespace["DyRCNNx4"](), dd.compile(X4, params)
    standalone.load_state_dict(model.state_dict())
    x = torch.randn(2, 5, 3, 16, 16)
    grads = []
    for m in (standalone, model):
        m.train()(x).square().sum().backward()
        grads.append([p.grad for p in m.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def _graph(drive_users: int):
    """prev, x -> relu(lerp(prev, x + x, 0.4)), the sum read by `drive_users` ops."""
    g = fx.Graph()
    prev, x = g.placeholder("prev"), g.placeholder("x")
    pooled = g.call_function(F.max_pool2d, (x, 3, 2, 1))
    drive = g.call_function(operator.add, (pooled, pooled))
    r = g.call_function(torch.relu, (g.call_function(torch.lerp, (prev, drive, 0.4)),))
    g.output((r,) + (drive,) * (drive_users - 1))
    return g


def test_pass_fuses_the_euler_step_only_into_a_map_nobody_else_reads():
    g = _graph(1)
    assert lean_training_ops(g)
    targets = [n.target for n in g.nodes if n.op == "call_function"]
    assert targets == [lean_max_pool2d, operator.add, euler_relu_]
    g = _graph(2)  # the sum is also returned: it must survive, so lerp allocates and relu_ reuses that
    lean_training_ops(g)
    assert [n.target for n in g.nodes if n.op in ("call_function", "call_method")] == [
        lean_max_pool2d, operator.add, torch.lerp, "relu_"]


def test_helper_sources_only_for_ops_a_step_calls():
    assert helper_sources(["y = x + 1"]) == []
    assert [s.split("(")[0] for s in helper_sources(["y = add_into(a, b)"])] == ["def add_into"]
