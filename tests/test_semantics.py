"""End-to-end semantics: compiled models against closed forms.

Every test compiles a tiny spec (1-channel areas on a 4x4 input), runs it in
float64 and compares responses, presence and logits with values computed by
hand from LANGUAGE.md: the solvers (§4), delays (§5), silence (§6), ports,
idle steps (§1) and gradients through delayed recurrence.
"""
from __future__ import annotations

import math

import pytest
import torch

import dynvision_dsl

pytestmark = pytest.mark.backend

F64 = torch.float64
TAU_MS = 4.0  # every leaky area below uses tau = 4 ms
SHAPE = (1, 4, 4)


# --------------------------------------------------------------------------- helpers

def build(body: str, *, dt: str = "1 ms", steps: str | int = 6, idle: int | None = None,
          decl: str = "", params: dict | None = None, optimize: bool = True):
    """Compile a spec made of a time block, a [1, 4, 4] input and `body`, in float64."""
    idle_line = f"\n  idle  = {idle}" if idle is not None else ""
    src = (f"model Sem\n{decl}\n"
           f"time {{\n  dt    = {dt}\n  steps = {steps}{idle_line}\n}}\n"
           f"input image [1, 4, 4]\n"
           f"param tau = {TAU_MS:g} ms\n"
           f"{body}\n")
    return dynvision_dsl.compile(src, params=params, optimize=optimize).double()


def setp(model, name: str, value: float) -> None:
    """Fill a parameter or buffer of the model (by state-dict key) with a constant."""
    with torch.no_grad():
        model.state_dict()[name].fill_(value)


def readout_unit(model, bias: float = 0.0) -> None:
    """Make `avgpool | linear(1)` the spatial mean plus `bias`."""
    setp(model, "readout.linear.weight", 1.0)
    setp(model, "readout.linear.bias", bias)


def frames(steps: int, batch: int = 2, seed: int = 0, low: float = -1.0, high: float = 1.0):
    """Distinct random frames (B, T, 1, 4, 4)."""
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand((batch, steps) + SHAPE, generator=g, dtype=F64)


def shifted(x: torch.Tensor, k: int) -> torch.Tensor:
    """x delayed by k steps along time, zeros before (B, T, ...)."""
    out = torch.zeros_like(x)
    if k == 0:
        return x.clone()
    out[:, k:] = x[:, :-k]
    return out


def close(actual, expected, tol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


def euler_leaky(drive, a, r0=None):
    """Reference euler for tau dr/dt = -r + I_t, a = dt/tau.

    drive: list over steps of a tensor or None (silent). r0: initial state or
    None (silent). A silent state is left out of the sum, so the first driven
    step gives a * I. Returns the list of r_t (None while silent)."""
    r, out = r0, []
    for inp in drive:
        if r is None:
            r = None if inp is None else a * inp
        else:
            r = r + a * ((inp if inp is not None else 0.0) - r)
        out.append(r)
    return out


def stack_or_zero(values, like):
    return torch.stack([v if v is not None else torch.zeros_like(like) for v in values], 1)


# --------------------------------------------------------------------------- §4 solvers

RK4_GROWTH = {
    "euler": lambda h: 1 - h,
    "rk4": lambda h: 1 - h + h ** 2 / 2 - h ** 3 / 6 + h ** 4 / 24,
    "exponential": lambda h: math.exp(-h),
}


@pytest.mark.parametrize("solver, optimize", [
    pytest.param(s, o, id=f"{s}-{'opt' if o else 'noopt'}")
    for o in (True, False) for s in ("default", "euler", "rk4", "exponential")])
def test_leaky_integration_of_constant_input(solver, optimize):
    line = "" if solver == "default" else f"solver {solver}"
    steps = 10
    m = build(f"""
area V1 [1] {{
  tau * dr/dt = -r + input
  {line}
}}
image -> V1 : conv(1, bias=false) as w1
readout V1 : avgpool | linear(1)
""", steps=steps, optimize=optimize)
    setp(m, "w1.weight", 1.5)
    readout_unit(m, bias=0.25)
    x = frames(1, batch=3)[:, 0]                     # static image (B, C, H, W)
    r = m.run(x)
    h = 1.0 / TAU_MS
    g = RK4_GROWTH["euler" if solver == "default" else solver](h)
    # r_n = I (1 - g^n) after n steps, starting from a silent (≈ zero) state;
    # for euler the first driven step is dt/tau * I = I (1 - (1 - h)).
    n = torch.arange(1, steps + 1, dtype=F64)
    factor = 1 - g ** n
    expected = 1.5 * x[:, None] * factor[None, :, None, None, None]
    assert r.present["V1"].all()
    close(r.responses["V1"], expected)
    close(r.logits[..., 0], expected.mean(dim=(2, 3, 4)) + 0.25)
    close(m(x), r.logits)


def test_exponential_is_exact_and_first_step_rules():
    """First driven step: euler gives dt/tau*I, exponential I(1-e^{-dt/tau}),
    rk4 I(1-g) with g the RK4 amplification factor."""
    x = torch.ones((1,) + SHAPE, dtype=F64)
    h = 1.0 / TAU_MS
    for solver, first in [("euler", h), ("exponential", 1 - math.exp(-h)),
                          ("rk4", 1 - RK4_GROWTH["rk4"](h))]:
        m = build(f"""
area V1 [1] {{
  tau * dr/dt = -r + input
  solver {solver}
}}
image -> V1 : scale(2.0, fixed)
readout V1 : avgpool | linear(1)
""", steps=1)
        r = m.run(x)
        close(r.responses["V1"][0, 0], torch.full(SHAPE, 2.0 * first, dtype=F64))


# (ODE text, leak lam, input gain): the linear ODE tau r' = -lam r + gain I
ODE_FORMS = [
    ("dr/dt = (input - r) / tau", 1.0, 1.0),
    ("tau * dr/dt = -2 * r + input", 2.0, 1.0),
    ("8 ms * dr/dt = -r + 2 * input", 0.5, 1.0),
    ("tau * dr/dt = input - r / 2", 0.5, 1.0),
]


@pytest.mark.parametrize("solver", ["euler", "rk4", "exponential"])
@pytest.mark.parametrize("ode, lam, gain", ODE_FORMS, ids=[f[0] for f in ODE_FORMS])
def test_equivalent_ode_forms_match_closed_form(ode, lam, gain, solver):
    steps = 6
    m = build(f"""
area V1 [1] {{
  {ode}
  solver {solver}
}}
image -> V1 : identity
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(1, batch=2)[:, 0]
    r = m.run(x)
    h = lam * 1.0 / TAU_MS
    g = RK4_GROWTH[solver](h)
    n = torch.arange(1, steps + 1, dtype=F64)
    expected = (gain / lam) * x[:, None] * (1 - g ** n)[None, :, None, None, None]
    close(r.responses["V1"], expected)


CONV_SPEC = """
param dt    = 1 ms
param steps = 8
area V1 [1] {{
  state r = 1
  tau * dr/dt = -r + input
  solver {solver}
}}
image -> V1 : scale(0.0, fixed)
readout V1 : avgpool | linear(1)
"""


def final_error(solver: str, dt_ms: float, total_ms: float = 8.0) -> float:
    steps = round(total_ms / dt_ms)
    body = CONV_SPEC.format(solver=solver)
    decl, body = body.split("area", 1)
    m = build("area" + body, dt="dt", steps="steps", decl=decl,
              params={"dt": f"{dt_ms:g} ms", "steps": steps})
    r = m.run(torch.zeros((1,) + SHAPE, dtype=F64))
    assert r.responses["V1"].shape[1] == steps
    final = r.responses["V1"][0, -1, 0, 0, 0].item()
    return abs(final - math.exp(-total_ms / TAU_MS))


@pytest.mark.parametrize("solver, lo, hi", [("euler", 0.8, 1.2), ("rk4", 3.5, 4.5)])
def test_convergence_order(solver, lo, hi):
    errors = [final_error(solver, dt) for dt in (1.0, 0.5, 0.25)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    for p in orders:
        assert lo <= p <= hi, (solver, errors, orders)


def test_exponential_solver_has_no_discretisation_error():
    for dt in (1.0, 0.5, 0.25):
        assert final_error("exponential", dt) < 1e-13


def _integrate_reference(f, y, h, solver):
    """One step of y' = f(y) (a tuple of tensors), inputs held."""
    def axpy(c, k):
        return tuple(yi + c * ki for yi, ki in zip(y, k))
    if solver == "euler":
        return axpy(h, f(y))
    k1 = f(y)
    k2 = f(axpy(h / 2, k1))
    k3 = f(axpy(h / 2, k2))
    k4 = f(axpy(h, k3))
    return tuple(yi + h / 6 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4))


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_all_odes_of_an_area_are_integrated_jointly(solver):
    """tau dr/dt = -r + I - w a, tau_a da/dt = -a + r: both updates use the
    states at the start of the step (and, for rk4, each stage's joint state)."""
    steps = 6
    m = build(f"""
param tau_a = 8 ms
param w     = 0.5
area V1 [1] {{
  state r = 0
  state a = 0.5
  tau   * dr/dt = -r + input - w * a
  tau_a * da/dt = -a + r
  solver {solver}
}}
image -> V1 : identity
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    y = (torch.zeros_like(x[:, 0]), torch.full_like(x[:, 0], 0.5))
    ref = []
    for t in range(steps):
        inp = x[:, t]
        y = _integrate_reference(lambda s: ((-s[0] + inp - 0.5 * s[1]) / TAU_MS, (-s[1] + s[0]) / 8.0), y, 1.0, solver)
        ref.append(y[0])
    assert r.present["V1"].all()
    close(r.responses["V1"], torch.stack(ref, 1))


ASSIGN_CASES = [
    ("relu(fb)", lambda prev_ode, f: torch.relu(f)),
    ("r + fb", lambda prev_ode, f: prev_ode + f),
]


@pytest.mark.parametrize("rhs, after", ASSIGN_CASES, ids=[c[0] for c in ASSIGN_CASES])
def test_assignment_with_a_silent_right_side_leaves_the_state_unchanged(rhs, after):
    steps, k = 6, 2
    m = build(f"""
area V1 [1] {{
  state r = 1
  tau * dr/dt = -r
  r = {rhs}
}}
image -> V1.fb : identity, delay {k} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    keep = 1 - 1.0 / TAU_MS
    prev, ref = torch.ones_like(x[:, 0]), []
    for t in range(steps):
        ode = keep * prev                                # euler on tau dr/dt = -r
        prev = ode if t < k else after(ode, x[:, t - k])
        ref.append(prev)
    assert r.present["V1"].all()
    close(r.responses["V1"], torch.stack(ref, 1))


# --------------------------------------------------------------------------- §5 delays

@pytest.mark.parametrize("op, gain", [("identity", 1.0), ("scale(1.5, fixed)", 1.5)])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_delay_shifts_signal_by_delay_over_dt(k, op, gain):
    steps = 7
    m = build(f"""
area R [1] {{
  r = input
}}
image -> R : {op}, delay {2 * k} ms
readout R : avgpool | linear(1)
""", dt="2 ms", steps=steps)
    readout_unit(m, bias=0.3)
    x = frames(steps)
    r = m.run(x)
    expected = gain * shifted(x, k)
    close(r.responses["R"], expected)
    present = torch.arange(steps) >= k
    assert r.present["R"].tolist() == present.tolist()
    assert (r.responses["R"][:, :k] == 0).all()
    # the readout is zero while its source is silent, mean + bias after
    assert (r.logits[:, :k] == 0).all()
    close(r.logits[:, k:, 0], expected[:, k:].mean(dim=(2, 3, 4)) + 0.3)


def test_delays_add_along_a_chain():
    steps = 8
    m = build("""
area A [1] {
  r = input
}
area B [1] {
  r = input
}
image -> A : identity, delay 1 ms
A -> B     : scale(2.0, fixed), delay 2 ms
readout B : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    close(r.responses["A"], shifted(x, 1))
    close(r.responses["B"], 2.0 * shifted(x, 3))
    assert r.present["A"].tolist() == [t >= 1 for t in range(steps)]
    assert r.present["B"].tolist() == [t >= 3 for t in range(steps)]


def test_readout_delay_shifts_the_logits():
    steps, k = 6, 2
    m = build(f"""
area R [1] {{
  r = input
}}
image -> R : identity
readout R : avgpool | linear(1), delay {k} ms
""", steps=steps)
    readout_unit(m, bias=0.5)
    x = frames(steps)
    out = m(x)
    assert (out[:, :k] == 0).all()
    close(out[:, k:, 0], x[:, :-k].mean(dim=(2, 3, 4)) + 0.5)


# --------------------------------------------------------------------------- §6 silence

def test_silence_a_term_joins_a_sum_once_its_delay_elapsed():
    steps = 6
    m = build("""
area A [1] {
  r = input
}
area B [1] {
  r = input
}
image -> A : identity
image -> B : identity
A -> B     : scale(2.0, fixed), delay 2 ms
readout B : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    assert r.present["B"].all()
    close(r.responses["B"][:, :2], x[:, :2])                       # before: input only
    close(r.responses["B"][:, 2:], x[:, 2:] + 2.0 * x[:, :-2])     # after: + delayed term


@pytest.mark.parametrize("solver", ["euler", "exponential", "rk4"])
def test_silence_recurrent_term_joins_after_its_delay(solver):
    """tau dr/dt = -r + input + w r(t-2): the recurrent term is left out of
    the sum for the first two steps, then reads r two steps back."""
    steps = 8
    w = 0.75  # exact in float32: parameters are created in float32, then .double()
    m = build(f"""
area V1 [1] {{
  tau * dr/dt = -r + input
  solver {solver}
}}
image -> V1 : identity
V1 -> V1    : scale({w}, fixed), delay 2 ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    h = 1.0 / TAU_MS
    keep = RK4_GROWTH[solver](h)        # each solver: r <- keep r + (1 - keep) D, D held
    ref = []
    for t in range(steps):
        drive = x[:, t] + (w * ref[t - 2] if t >= 2 else 0.0)
        prev = ref[t - 1] if t >= 1 else torch.zeros_like(drive)
        ref.append(keep * prev + (1 - keep) * drive)
    close(r.responses["V1"], torch.stack(ref, 1))
    assert r.present["V1"].all()


@pytest.mark.parametrize("init", [None, 1.0], ids=["silent", "rest1"])
@pytest.mark.parametrize("d", [1, 2])
def test_recurrence_reads_the_initial_state_as_step_minus_one(d, init):
    """A state's initial value is its value at step -1: a recurrent connection
    with delay d reads it at step d-1 and is silent before."""
    steps, w = 6, 0.5
    state = "" if init is None else f"state r = {init:g}"
    m = build(f"""
area V1 [1] {{
  {state}
  tau * dr/dt = -r + input
}}
image -> V1 : identity
V1 -> V1    : scale({w}, fixed), delay {d} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    a = 1.0 / TAU_MS
    hist = {-1: None if init is None else torch.full_like(x[:, 0], init)}
    for t in range(steps):
        rec = hist.get(t - d)
        drive = x[:, t] + (w * rec if rec is not None else 0.0)
        prev = hist[t - 1]
        hist[t] = a * drive if prev is None else prev + a * (drive - prev)
    close(r.responses["V1"], torch.stack([hist[t] for t in range(steps)], 1))


def test_silence_gain_is_one_while_feedback_silent():
    steps = 6
    k = 3
    m = build(f"""
area A [1] {{
  r = input
}}
area V1 [1] {{
  r = input * (1 + tanh(fb))
}}
image -> A     : identity
image -> V1    : identity
A -> V1.fb     : scale(0.5, fixed), delay {k} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    assert r.present["V1"].all()
    close(r.responses["V1"][:, :k], x[:, :k])
    fb = 0.5 * x[:, :-k]
    close(r.responses["V1"][:, k:], x[:, k:] * (1 + torch.tanh(fb)))


def test_silence_gated_leaky_area_matches_reference():
    """The `gated` dynamics of ventral4: tau dr/dt = -r + input * (1 + tanh(fb))."""
    steps = 7
    k = 2
    m = build(f"""
area A [1] {{
  r = input
}}
area V1 [1] {{
  tau * dr/dt = -r + input * (1 + tanh(fb))
}}
image -> A  : identity
image -> V1 : identity
A -> V1.fb  : scale(-0.75, fixed), delay {k} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    drive = [x[:, t] * (1 + torch.tanh(-0.75 * x[:, t - k])) if t >= k else x[:, t] for t in range(steps)]
    ref = euler_leaky(drive, 1.0 / TAU_MS)
    close(r.responses["V1"], torch.stack(ref, 1))


# expression, value before fb arrives, value after (x: input now, f: fb now)
SILENT_PRODUCTS = [
    ("input - w * fb", lambda x: x, lambda x, f: x - 3 * f),
    ("input + fb * w", lambda x: x, lambda x, f: x + 3 * f),
    ("input + w * (fb + input)", lambda x: 4 * x, lambda x, f: x + 3 * (f + x)),
    ("input + relu(fb) / w", lambda x: x, lambda x, f: x + torch.relu(f) / 3),
    ("input + fb * fb", lambda x: x, lambda x, f: x + f * f),
    ("input + exp(fb) - 1", lambda x: x - 1, lambda x, f: x + torch.exp(f) - 1),
    ("w * input + sigmoid(fb) * input", lambda x: 3 * x, lambda x, f: 3 * x + torch.sigmoid(f) * x),
    ("input + max(fb, 0) ^ 2", lambda x: x, lambda x, f: x + torch.clamp(f, min=0) ** 2),
    ("input + clamp(fb, -0.125, 0.125)", lambda x: x, lambda x, f: x + torch.clamp(f, -0.125, 0.125)),
    ("input + w * (fb > 0)", lambda x: x, lambda x, f: x + 3 * (f > 0).to(f.dtype)),
    ("input + min(fb, input)", lambda x: x, lambda x, f: x + torch.minimum(f, x)),
    ("-fb + input", lambda x: x, lambda x, f: x - f),
    ("fb - input", lambda x: -x, lambda x, f: f - x),
    ("input - (fb - input)", lambda x: 2 * x, lambda x, f: 2 * x - f),
]


@pytest.mark.parametrize("expr, before, after", SILENT_PRODUCTS, ids=[e for e, _, _ in SILENT_PRODUCTS])
def test_silence_operations_on_silent_values_drop_out_of_sums(expr, before, after):
    steps = 6
    k = 2
    m = build(f"""
param w = 3
area A [1] {{
  r = input
}}
area V1 [1] {{
  r = {expr}
}}
image -> A  : identity
image -> V1 : identity
A -> V1.fb  : scale(0.5, fixed), delay {k} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    assert r.present["V1"].all()
    close(r.responses["V1"][:, :k], before(x[:, :k]))
    close(r.responses["V1"][:, k:], after(x[:, k:], 0.5 * x[:, :-k]))


@pytest.mark.parametrize("solver", ["euler", "rk4", "exponential"])
def test_silence_area_without_present_terms_stays_silent(solver):
    steps = 7
    k = 3
    m = build(f"""
area V1 [1] {{
  tau * dr/dt = -r + input
  solver {solver}
}}
area V2 [1] {{
  r = relu(input)
}}
image -> V1 : identity, delay {k} ms
V1 -> V2    : identity
readout V2 : avgpool | linear(1)
""", steps=steps)
    readout_unit(m, bias=0.7)
    x = frames(steps, low=0.1, high=1.0)
    r = m.run(x)
    for area in ("V1", "V2"):
        assert r.present[area].tolist() == [t >= k for t in range(steps)], area
        assert (r.responses[area][:, :k] == 0).all()
    assert (r.logits[:, :k] == 0).all()                  # not the readout's bias
    keep = RK4_GROWTH[solver](1.0 / TAU_MS)
    ref, prev = [], None
    for t in range(steps):
        if t >= k:                                       # first driven step from silence: (1 - keep) I
            prev = (1 - keep) * x[:, t - k] + (keep * prev if prev is not None else 0.0)
        ref.append(prev)
    if solver == "euler":
        close(r.responses["V1"][:, k], x[:, 0] / TAU_MS)  # dt/tau * I
    close(r.responses["V1"], stack_or_zero(ref, x[:, 0]))
    close(r.logits[:, k:, 0], torch.relu(r.responses["V1"][:, k:]).mean(dim=(2, 3, 4)) + 0.7)


BIAS_STATELESS = """
area A [1] {{
  r = input
}}
area V1 [1] {{
  r = input + bias(scalar) as b1
}}
{extra}
image -> A  : identity
image -> V1 : identity, delay {k} ms
{conn}
readout {readout} : avgpool | linear(1)
"""

def test_silence_bias_keeps_an_undriven_stateless_area_present():
    steps, k = 6, 3
    m = build(BIAS_STATELESS.format(k=k, extra="", conn="", readout="A"), steps=steps)
    setp(m, "b1.bias", 0.375)
    x = frames(steps)
    r = m.run(x)
    assert r.present["V1"].all()
    close(r.responses["V1"], shifted(x, k) + 0.375)     # the bias alone before the input arrives


def test_silence_bias_only_area_feeds_a_same_step_identity_connection():
    steps, k = 6, 3
    m = build(BIAS_STATELESS.format(k=k, extra="area V2 [1] {\n  r = input\n}", conn="V1 -> V2 : identity",
                                    readout="A"), steps=steps)
    setp(m, "b1.bias", 0.375)
    x = frames(steps)
    r = m.run(x)
    assert r.present["V2"].all()
    close(r.responses["V2"], shifted(x, k) + 0.375)


def test_silence_bias_only_area_read_by_the_readout():
    steps, k = 6, 3
    m = build(BIAS_STATELESS.format(k=k, extra="", conn="", readout="V1"), steps=steps)
    setp(m, "b1.bias", 0.375)
    readout_unit(m, bias=0.125)
    x = frames(steps)
    r = m.run(x)                                         # IndexError in adaptive_avg_pool2d
    expected = shifted(x, k) + 0.375
    close(r.responses["V1"], expected)
    close(r.logits[..., 0], expected.mean(dim=(2, 3, 4)) + 0.125)


def test_silence_bias_only_area_feeds_a_same_step_conv():
    steps, k = 6, 3
    m = build(BIAS_STATELESS.format(k=k, extra="area V2 [1] {\n  r = input\n}",
                                    conn="V1 -> V2 : conv(1, bias=false) as w2", readout="A"), steps=steps)
    setp(m, "b1.bias", 0.375)
    setp(m, "w2.weight", 2.0)
    x = frames(steps)
    r = m.run(x)                                         # RuntimeError: conv2d got input of size [1]
    close(r.responses["V2"], 2.0 * (shifted(x, k) + 0.375))


def test_silence_bias_keeps_an_undriven_leaky_area_present():
    steps, k = 7, 3
    m = build(f"""
area A [1] {{
  r = input
}}
area V1 [1] {{
  tau * dr/dt = -r + input + bias(scalar) as b1
}}
image -> A  : identity
image -> V1 : identity, delay {k} ms
readout A : avgpool | linear(1)
""", steps=steps)
    setp(m, "b1.bias", 0.375)
    x = frames(steps)
    r = m.run(x)
    assert r.present["V1"].all()
    b = torch.full_like(x[:, 0], 0.375)
    ref = euler_leaky([b + (x[:, t - k] if t >= k else 0.0) for t in range(steps)], 1.0 / TAU_MS)
    close(r.responses["V1"], torch.stack(ref, 1))
    close(r.responses["V1"][:, 0], b / TAU_MS)          # first driven step: dt/tau * bias


@pytest.mark.parametrize("init", [None, 0.0, 1.0], ids=["silent", "rest0", "rest1"])
def test_silence_state_at_rest_versus_silent(init):
    steps = 7
    k = 3
    state = "" if init is None else f"state r = {init:g}"
    m = build(f"""
area V1 [1] {{
  {state}
  tau * dr/dt = -r + input
}}
image -> V1 : identity, delay {k} ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    readout_unit(m, bias=0.7)
    x = frames(steps)
    r = m.run(x)
    r0 = None if init is None else torch.full_like(x[:, 0], init)
    ref = euler_leaky([x[:, t - k] if t >= k else None for t in range(steps)], 1.0 / TAU_MS, r0)
    expected = stack_or_zero(ref, x[:, 0])
    close(r.responses["V1"], expected)
    if init is None:
        assert r.present["V1"].tolist() == [t >= k for t in range(steps)]
        assert (r.logits[:, :k] == 0).all()
    else:
        assert r.present["V1"].all()                     # at rest from step 0
        close(r.logits[:, :k, 0], expected[:, :k].mean(dim=(2, 3, 4)) + 0.7)
    close(r.logits[:, k:, 0], expected[:, k:].mean(dim=(2, 3, 4)) + 0.7)


# --------------------------------------------------------------------------- ports

def test_two_connections_into_the_same_port_sum():
    steps = 5
    m = build("""
area V1 [1] {
  r = input
}
image -> V1 : scale(2.0, fixed)
image -> V1 : scale(3.0, fixed)
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    close(m.run(x).responses["V1"], 5.0 * x)


def test_two_connections_into_a_named_port_sum():
    steps = 5
    m = build("""
area A [1] {
  r = input
}
area V1 [1] {
  r = input - 10 * fb
}
image -> A     : identity
image -> V1    : identity
image -> V1.fb : scale(2.0, fixed)
A -> V1.fb     : scale(3.0, fixed), delay 1 ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    fb = 2.0 * x + 3.0 * shifted(x, 1)
    close(m.run(x).responses["V1"], x - 10 * fb)


def test_named_ports_feed_only_their_port():
    steps = 5
    m = build("""
area A [1] {
  r = input
}
area V1 [1] {
  r = input - 10 * fb + 100 * lat
}
image -> A      : identity
image -> V1     : scale(2.0, fixed)
A -> V1.fb      : scale(3.0, fixed)
A -> V1.lat     : scale(5.0, fixed), delay 1 ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    r = m.run(x)
    expected = 2.0 * x - 10 * 3.0 * x + 100 * 5.0 * shifted(x, 1)
    close(r.responses["V1"], expected)


# --------------------------------------------------------------------------- §1 idle

IDLE_BODY = """
area V1 [1] {
  tau * dr/dt = -r + input + bias(scalar) as b1
}
area V2 [1] {
  state a = 0.5
  tau * dr/dt = -r + input - a
  tau * da/dt = -a + r
  solver rk4
}
image -> V1 : conv(1) as w_in
V1 -> V1    : scale(0.5, fixed), delay 2 ms
V1 -> V2    : conv(1), delay 1 ms
readout V2 : avgpool | linear(1)
"""


@pytest.mark.parametrize("static", [False, True], ids=["frames", "static"])
def test_idle_steps_carry_state_over(static):
    steps, idle = 5, 3
    torch.manual_seed(0)
    m_idle = build(IDLE_BODY, steps=steps, idle=idle)
    m_plain = build(IDLE_BODY, steps=steps + idle, idle=0)
    setp(m_idle, "b1.bias", 0.3)
    m_plain.load_state_dict(m_idle.state_dict())
    x = frames(steps)
    if static:
        x_idle = x[:, 0]
        x = x[:, :1].expand(-1, steps, -1, -1, -1)
    else:
        x_idle = x
    blank = torch.zeros((x.shape[0], idle) + SHAPE, dtype=F64)
    a = m_idle.run(x_idle)
    b = m_plain.run(torch.cat([blank, x], 1))
    assert a.logits.shape[1] == steps
    close(a.logits, b.logits[:, idle:])
    for area in ("V1", "V2"):
        close(a.responses[area], b.responses[area][:, idle:])
        assert a.present[area].tolist() == b.present[area][idle:].tolist()
    # the idle steps matter: V1 reached a nonzero state from its bias
    c = build(IDLE_BODY, steps=steps, idle=0)
    c.load_state_dict(m_idle.state_dict())
    assert not torch.allclose(c.run(x_idle).responses["V1"], a.responses["V1"])


def test_idle_makes_delayed_sources_present_at_step_zero():
    """With idle >= delay/dt, a delayed connection from the image is already
    present at the first recorded step (it reads a blank frame)."""
    steps = 4
    m = build("""
area R [1] {
  r = input
}
image -> R : identity, delay 2 ms
readout R : avgpool | linear(1)
""", steps=steps, idle=2)
    x = frames(steps)
    r = m.run(x)
    assert r.present["R"].all()
    close(r.responses["R"], shifted(x, 2))


# --------------------------------------------------------------------------- autograd

def test_gradient_through_delayed_recurrence_matches_finite_difference():
    steps = 8
    m = build("""
area V1 [1] {
  tau * dr/dt = -r + input
  r = tanh(r)
}
image -> V1 : conv(1, bias=false) as w_in
V1 -> V1    : scale(0.5) as w_rec, delay 2 ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    setp(m, "w_in.weight", 1.3)
    readout_unit(m, bias=0.0)
    x = frames(steps, seed=3)
    weight = dict(m.named_parameters())["w_rec.weight"]
    assert weight.requires_grad

    def loss():
        return (m(x) ** 2).sum()

    m.zero_grad()
    loss().backward()
    grad = weight.grad.sum().item()
    eps = 1e-6
    with torch.no_grad():
        w0 = weight.detach().clone()
        weight.add_(eps)
        up = loss().item()
        weight.copy_(w0 - eps)
        down = loss().item()
        weight.copy_(w0)
    fd = (up - down) / (2 * eps)
    assert abs(grad) > 1e-3
    assert grad == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_recurrent_weight_has_no_gradient_if_only_silent_steps_are_read():
    """The recurrent term joins at step 2, so a loss on steps 0 and 1 does not
    depend on the recurrent weight."""
    steps = 4
    m = build("""
area V1 [1] {
  tau * dr/dt = -r + input
}
image -> V1 : identity
V1 -> V1    : scale(0.5) as w_rec, delay 2 ms
readout V1 : avgpool | linear(1)
""", steps=steps)
    x = frames(steps)
    weight = dict(m.named_parameters())["w_rec.weight"]
    out = m(x)
    out[:, :2].sum().backward(retain_graph=True)
    assert weight.grad is None or (weight.grad == 0).all()
    m.zero_grad()
    out[:, 2:].sum().backward()
    assert weight.grad is not None and (weight.grad != 0).any()
