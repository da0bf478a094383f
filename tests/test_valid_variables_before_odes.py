"""§9.2 variables before ODEs against independent loops: a variable above the ODEs is
re-evaluated from the states being integrated (once per Euler step, at each RK4 stage),
and the exponential solver sees through it; silence rules apply to it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dynvision_dsl as dd

pytestmark = pytest.mark.backend

HERE = Path(__file__).resolve().parent
SPEC = (HERE / "valid" / "variables_before_odes.dyn").read_text()
TAU, DT, STEPS = 4.0, 1.0, 12


def _frames(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((2, STEPS, 1, 4, 4), generator=g, dtype=torch.float64)


def _rate(r, i):
    return (-r + i / (1 + r * r)) / TAU


def _euler(x):
    r, out = torch.full_like(x[:, 0], 0.5), []
    for t in range(STEPS):
        r = r + DT * _rate(r, x[:, t])
        out.append(r)
    return torch.stack(out, 1)


def _rk4(x, held: bool = False):
    """Classic RK4, the input held; with `held` the gain is frozen at the step's start."""
    r, out = torch.full_like(x[:, 0], 0.5), []
    for t in range(STEPS):
        i = x[:, t]
        g0 = 1 / (1 + r * r)
        f = (lambda s: (-s + i * g0) / TAU) if held else (lambda s: _rate(s, i))
        k1 = f(r)
        k2 = f(r + DT / 2 * k1)
        k3 = f(r + DT / 2 * k2)
        k4 = f(r + DT * k3)
        r = r + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(r)
    return torch.stack(out, 1)


def _run(method: str, x):
    model = dd.compile(SPEC, params={"method": method}).double()
    return model.run(x, record=["V1"]).responses["V1"]


def test_euler_reevaluates_the_variable_once_per_step():
    x = _frames()
    assert torch.allclose(_run("euler", x), _euler(x), atol=1e-9)


def test_rk4_reevaluates_the_variable_at_each_stage():
    x = _frames(1)
    got, want, held = _run("rk4", x), _rk4(x), _rk4(x, held=True)
    assert (got - want).abs().max() < 1e-6
    assert (held - want).abs().max() > 1e-4  # a held gain would be a different, wrong model


def test_the_emitted_module_integrates_variables_too():
    """The standalone module (as `dynv compile` writes it) gives the same responses."""
    program, _ = dd.pipeline.build(SPEC, {"method": "rk4"})
    namespace: dict = {}
    exec(compile(dd.render.render(program), "<emitted>", "exec"), namespace)  # noqa: S102 - our own output
    emitted = namespace[dd.render.class_name(program.model.name)]().double()
    model = dd.compile(SPEC, params={"method": "rk4"}).double()
    emitted.load_state_dict(model.state_dict())
    x = _frames(2)
    assert torch.equal(emitted(x), model(x))


def test_a_variable_of_a_silent_port_follows_the_sum_rule():
    """gain = 1 + tanh(fb) is 1 while fb is silent, then 1 + tanh(fb) once it arrives."""
    src = """model Gain
time { dt = 1 ms  steps = 6 }
input image [1, 4, 4]
param tau = 4 ms
area V1 [1] {
  gain = 1 + tanh(fb)
  tau * dr/dt = -r + input * gain
}
image -> V1 : identity
image -> V1.fb : identity, delay 3 ms
readout V1 : avgpool | linear(2)
"""
    model = dd.compile(src).double()
    x = _frames()[:, :6]
    got = model.run(x, record=["V1"]).responses["V1"]
    r = torch.zeros_like(x[:, 0])
    for t in range(6):
        gain = 1 + (torch.tanh(x[:, t - 3]) if t >= 3 else 0)
        r = r + DT / TAU * (x[:, t] * gain - r)  # r silent at step 0: the leak term drops out
        assert torch.allclose(got[:, t], r, atol=1e-12)


def test_assignments_below_see_the_variable_of_the_steps_start():
    src = """model Below
time { dt = 1 ms  steps = 5 }
input image [1, 4, 4]
param tau = 4 ms
area V1 [1] {
  state r = 0.5
  gain = 1 / (1 + r * r)
  tau * dr/dt = -r + input * gain
  out = gain
  output out
}
image -> V1 : identity
readout V1 : avgpool | linear(2)
"""
    model = dd.compile(src).double()
    x = _frames()[:, :5]
    got = model.run(x, record=["V1"]).responses["V1"]
    r = torch.full_like(x[:, 0], 0.5)
    for t in range(5):
        assert torch.allclose(got[:, t], 1 / (1 + r * r), atol=1e-12)
        r = r + DT * _rate(r, x[:, t])


def test_exponential_sees_through_a_variable_that_is_a_per_unit_leak():
    src = """model ExpVar
time { dt = 1 ms  steps = 6 }
input image [1, 4, 4]
param tau = 4 ms
area V1 [1] {
  state r = 0
  leak = 1 + 0.5 * input
  tau * dr/dt = -r * leak + input
  solver exponential
}
image -> V1 : identity
readout V1 : avgpool | linear(2)
"""
    model = dd.compile(src).double()
    x = _frames()[:, :6]
    got = model.run(x, record=["V1"]).responses["V1"]
    r = torch.zeros_like(x[:, 0])
    for t in range(6):
        i = x[:, t]
        lam = (1 + 0.5 * i) / TAU
        r = r * torch.exp(-lam * DT) + i / (1 + 0.5 * i) * (1 - torch.exp(-lam * DT))
        assert torch.allclose(got[:, t], r, atol=1e-12)


def test_a_variable_the_odes_read_no_longer_crashes_the_schedule():
    """Before: `KeyError: ('var', 'gain')` from schedule.py while compiling."""
    model = dd.compile(SPEC.replace("gain = 1 / (1 + r * r)", "gain = 2 * input")).double()
    assert model.present_from == {"V1": 0}
    x = _frames()[:, :3]
    got = model.run(x, record=["V1"]).responses["V1"]
    r = torch.full_like(x[:, 0], 0.5)
    for t in range(3):
        r = r + DT / TAU * (x[:, t] * 2 * x[:, t] - r)
        assert torch.allclose(got[:, t], r, atol=1e-12)
