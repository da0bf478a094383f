"""`lateral(full|self, k, max_gain=g)`: the lateral loop's operator norm stays at or below g, so a
leaky area whose unbounded recurrence blows up stays bounded at any length; refusals; emission."""
import importlib.util
import re

import pytest
import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl.diagnostics import DynError
from dynvision_dsl.pipeline import build
from dynvision_dsl.render import render

pytestmark = pytest.mark.backend

LOOP = """model Loop
param steps = 300
param gain = 0
param kind = "full"
time { dt = 2 ms  steps = steps }
input image [2, 6, 6]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area A [4] : leaky(tau=5 ms)
image -> A : conv(3)
A -> A : lateral(kind, 3, max_gain=gain) as A.recurrence, delay 6 ms
readout A : avgpool | linear(2)
"""


def _norm(weight: torch.Tensor, shape, iters: int = 2000) -> float:
    """The 'same' convolution's operator norm on inputs of `shape`, by long power iteration."""
    u = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = weight.detach().double()
    for _ in range(iters):
        u = F.conv_transpose2d(F.conv2d(u, w, padding=1), w, padding=1)
        u = u / u.norm()
    return float(F.conv2d(u, w, padding=1).norm())


def _loop(gain: float, kind: str = "full", scale: float = 4.0):
    """The loop with a recurrent kernel `scale` times its seeded draw: far beyond gain 1."""
    torch.manual_seed(0)
    model = dd.compile(LOOP, {"gain": str(gain), "kind": kind})
    rec = model.A.recurrence.conv if kind == "full" else model.A.recurrence
    raw = rec.parametrizations.weight.original if gain else rec.weight
    with torch.no_grad():
        raw.mul_(scale) if kind == "full" else raw.fill_(scale)
    return model, rec


def _course(model) -> torch.Tensor:
    x = torch.rand(1, model.steps, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, raw = model.simulate(x, record=["A"])
    return torch.stack([v.abs().mean() for v in raw["A"]])


def test_unbounded_loop_blows_up_and_the_bounded_one_stays_below_its_limit():
    model, _ = _loop(0)
    free = _course(model.eval())
    assert not torch.isfinite(free[-1]) or free[-1] > 1e3 * free[20]  # grows without bound
    model, rec = _loop(0.9)
    for _ in range(5):  # training-mode forwards run the power iteration on the scaled weight
        model.train()(torch.rand(2, 5, 2, 6, 6))
    assert _norm(rec.weight, (4, 6, 6)) <= 0.9 * 1.001
    bounded = _course(model.eval())
    assert torch.isfinite(bounded).all()
    assert bounded[-50:].max() < 1.05 * bounded[100:150].max()  # settled, not growing


def test_the_bound_holds_from_the_first_step_and_leaves_small_weights_alone():
    torch.manual_seed(0)
    model = dd.compile(LOOP, {"gain": "50"})
    rec = model.A.recurrence.conv
    assert torch.equal(rec.weight, rec.parametrizations.weight.original)  # far inside the bound: untouched
    model, rec = _loop(0.5)
    model.eval()
    assert _norm(rec.weight, (4, 6, 6)) <= 0.5 * 1.001  # no training-mode forward yet


def test_self_recurrence_is_bounded_by_its_scalar():
    model, rec = _loop(0.7, kind="self", scale=3.0)
    assert abs(float(rec.weight.detach())) == pytest.approx(0.7)


@pytest.mark.parametrize("params, message", [
    ({"gain": "0.9", "kind": "local"}, "max_gain bounds full and self recurrence, not local"),
    ({"gain": "-1"}, "max_gain must be positive"),
])
def test_refusals(params, message):
    with pytest.raises(DynError, match=message):
        dd.compile(LOOP, params)


def test_emitted_module_bounds_the_same_way(tmp_path):
    program, _ = build(LOOP, {"gain": "0.8", "steps": "12"})
    path = tmp_path / "loop.py"
    path.write_text(render(program))
    assert "class GainBound" in path.read_text() and "bound_gain(nn.Conv2d" in path.read_text()
    spec = importlib.util.spec_from_file_location("loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    standalone = getattr(module, re.findall(r"^class (\w+)\(nn.Module\)", path.read_text(), re.M)[-1])()
    model = dd.compile(LOOP, {"gain": "0.8", "steps": "12"})
    standalone.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(2, 12, 2, 6, 6)
    with torch.no_grad():
        assert torch.equal(standalone.eval()(x), model.eval()(x))
