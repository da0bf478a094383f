"""§9.5 noise(): the Ornstein–Uhlenbeck process `tau * dr/dt = -r + sigma * noise()` under
Euler–Maruyama has, from r = 0, the exact discrete variance after k steps
    Var r_k = s^2 (1 - q^k) / (1 - q),  s = sigma sqrt(dt) / tau,  q = (1 - dt/tau)^2
(stationary: sigma^2 / (2 tau - dt), times in ms). Checked within sampling error at two dt
(a dt/tau scaling of the noise would be off by a factor dt), plus seeded reproducibility."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import dynvision_dsl as dd

pytestmark = pytest.mark.backend

SPEC = (Path(__file__).resolve().parent / "valid" / "noise_ou.dyn").read_text()
TAU, SIGMA, STEPS, BATCH = 10.0, 0.5, 40, 64
ZERO = torch.zeros(BATCH, 1, 32, 32)


def exact_variance(k: int, dt: float) -> float:
    s2, q = SIGMA ** 2 * dt / TAU ** 2, (1 - dt / TAU) ** 2
    return s2 * (1 - q ** k) / (1 - q)


@pytest.mark.parametrize("dt", [1.0, 0.25])
def test_ou_variance_matches_the_discrete_closed_form(dt):
    model = dd.compile(SPEC, params={"step": f"{dt} ms"})
    r = model.run(ZERO, record=["V1"], seed=7).responses["V1"].double()  # (B, T, 1, 32, 32)
    n = BATCH * 32 * 32
    for t in (9, 19, STEPS - 1):  # recorded step t is the (t + 1)-th Euler-Maruyama step
        want = exact_variance(t + 1, dt)
        got = r[:, t].var(unbiased=False).item()
        assert abs(got / want - 1) < 5 * math.sqrt(2 / n), (t, got, want)  # 5 standard errors
        assert abs(r[:, t].mean().item()) < 5 * math.sqrt(want / n)


def test_stationary_variance_is_sigma_squared_over_two_tau_minus_dt():
    assert exact_variance(10 ** 6, 1.0) == pytest.approx(SIGMA ** 2 / (2 * TAU - 1.0), rel=1e-12)


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    model = dd.compile(SPEC)
    a, b = model.run(ZERO[:2], seed=3), model.run(ZERO[:2], seed=3)
    c = model.run(ZERO[:2], seed=4)
    assert torch.equal(a.responses["V1"], b.responses["V1"]) and torch.equal(a.logits, b.logits)
    assert not torch.equal(a.responses["V1"], c.responses["V1"])


def test_a_seeded_run_leaves_the_global_random_state_alone_and_no_seed_uses_it():
    model = dd.compile(SPEC)
    before = torch.get_rng_state()
    model.run(ZERO[:1], seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(11)
    a = model(ZERO[:1])
    torch.manual_seed(11)
    assert torch.equal(model(ZERO[:1]), a)
    assert not torch.equal(model(ZERO[:1]), a)


def test_the_emitted_module_draws_the_same_samples():
    program, _ = dd.pipeline.build(SPEC)
    source = dd.render.render(program)
    namespace: dict = {}
    exec(compile(source, "<emitted>", "exec"), namespace)  # noqa: S102 - our own output
    emitted = namespace[dd.render.class_name(program.model.name)]()
    model = dd.compile(SPEC)
    emitted.load_state_dict(model.state_dict())
    assert "torch.randn(" in source and "import dynvision" not in source
    assert torch.equal(emitted.simulate(ZERO[:2], seed=5)[0], model.simulate(ZERO[:2], seed=5)[0])


def test_noise_in_an_assignment_is_a_plain_sample_present_from_step_0():
    src = """model Plain
time { dt = 2 ms  steps = 6 }
input image [1, 32, 32]
param sigma = 0.5
area V1 [1, 32, 32] { r = sigma * noise() }
readout V1 : avgpool | linear(2)
"""
    model = dd.compile(src)
    assert model.present_from == {"V1": 0}
    r = model.run(ZERO, record=["V1"], seed=2).responses["V1"].double()
    n = BATCH * 32 * 32
    for t in range(6):
        assert abs(r[:, t].var(unbiased=False).item() / SIGMA ** 2 - 1) < 5 * math.sqrt(2 / n)
    corr = (r[:, 0] * r[:, 1]).mean().item() / SIGMA ** 2  # fresh each step: uncorrelated
    assert abs(corr) < 5 / math.sqrt(n)


def test_two_noise_calls_are_independent_samples():
    """sigma * noise() + sigma * noise() has variance 2 sigma^2, not the 4 sigma^2 of one sample twice."""
    src = """model Two
time { dt = 2 ms  steps = 1 }
input image [1, 32, 32]
area V1 [1, 32, 32] { r = noise() + noise() }
readout V1 : avgpool | linear(2)
"""
    r = dd.compile(src).run(ZERO, record=["V1"], seed=0).responses["V1"].double()
    n = BATCH * 32 * 32
    assert abs(r.var(unbiased=False).item() / 2 - 1) < 5 * math.sqrt(2 / n)


def test_dynv_run_seed_repeats_a_noisy_run(tmp_path):
    """`dynv run --seed S` gives the same responses for the same S, other ones for another."""
    from dynvision_dsl.cli import main

    spec = tmp_path / "ou.dyn"
    spec.write_text(SPEC.replace("[1, 32, 32]", "[1, 8, 8]"))
    outs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["run", str(spec), "--seed", seed, "--out", str(tmp_path / name)]) == 0
        outs[name] = torch.load(tmp_path / name / "responses.pt")["responses"]["V1"]
    assert torch.equal(outs["a"], outs["b"]) and not torch.equal(outs["a"], outs["c"])


def test_an_area_driven_only_by_noise_is_present_from_step_0():
    src = """model OnlyNoise
time { dt = 1 ms  steps = 3 }
input image [1, 8, 8]
param tau = 5 ms
area V1 [2, 8, 8] { tau * dr/dt = -r + noise() }
image -> V2 : identity
area V2 [1] { r = input }
readout V2 : avgpool | linear(2)
"""
    model = dd.compile(src)
    assert model.present_from["V1"] == 0
    r = model.run(torch.zeros(2, 1, 8, 8), record=["V1"], seed=0)
    assert r.present["V1"].all() and (r.responses["V1"][:, 0] != 0).all()
