"""The checks of variables before ODEs and noise() (E130-E141): every code is in the
catalogue with its examples, each rule reports its own code, and the wrong example of
each entry is refused with that code while the fixed one checks clean."""
from __future__ import annotations

import pytest

import dynvision_dsl as dd
from dynvision_dsl.frontend import ir
from dynvision_dsl.diagnostics import CATALOGUE, Span
from dynvision_dsl.frontend.check import noise

pytestmark = pytest.mark.frontend

OURS = [c for c in CATALOGUE if c[1:].isdigit() and 130 <= int(c[1:]) <= 149]


def _spec(body: str, solver: str = "") -> str:
    return (f"time {{ dt = 1 ms  steps = 4 }}\ninput image [1, 8, 8]\nparam tau = 5 ms\nparam sigma = 0.3\n"
            f"area V1 [4] {{\n{solver}{body}\n}}\nimage -> V1 : conv(3)\nreadout V1 : avgpool | linear(2)\n")


def test_the_range_is_catalogued():
    assert set(OURS) == {f"E{n}" for n in range(130, 142)}


@pytest.mark.parametrize("code", [c for c in OURS if c not in ("E137", "E139")])
def test_each_wrong_example_fails_with_its_code_and_the_fixed_one_passes(code):
    entry = CATALOGUE[code]
    wrong = [d for d in dd.check(_spec(entry.wrong)) if d.is_error]
    assert wrong and wrong[0].code == code, [(d.code, d.message) for d in wrong]
    assert [d for d in dd.check(_spec(entry.fixed)) if d.is_error] == []


def test_noise_in_a_param_reports_e137():
    src = _spec("tau * dr/dt = -r + input * g").replace("param sigma = 0.3", "param g = 1 + noise()")
    errors = [d for d in dd.check(src) if d.is_error]
    assert [d.code for d in errors] == ["E137"]


def test_noise_in_a_time_constant_reports_e139():
    """Unreachable through today's grammar (a coefficient is a name or a number): checked on the IR."""
    span = Span("x", 1, 1, 1, 8)
    coef = ir.Apply("add", (ir.Const(5.0, span), ir.Apply("noise", (), span)), span)
    area = ir.Area("V1", 1, None, span, odes=[ir.OdeEq("r", coef, ir.Ref("port", "input", span), span)])
    assert [d.code for d in noise.area_errors(area)] == ["E139"]


def test_an_assignment_below_the_odes_may_use_noise_and_still_read_the_state():
    src = _spec("g = 1 + relu(input)\ntau * dr/dt = -r + input * g + sigma * noise()\nr = r + 0.1 * noise()")
    assert dd.check(src) == []


@pytest.mark.parametrize("solver", ["solver rk4\n", "solver exponential\n"])
def test_other_solvers_keep_variables_above_the_odes(solver):
    body = "g = 1 + relu(input)\ntau * dr/dt = -r * g + input"
    assert [d for d in dd.check(_spec(body, solver)) if d.is_error] == []


def test_exponential_refuses_a_variable_that_makes_the_ode_nonlinear():
    body = "g = r * r\ntau * dr/dt = -g + input"
    errors = [d for d in dd.check(_spec(body, "solver exponential\n")) if d.is_error]
    assert len(errors) == 1 and "linear in 'r'" in errors[0].message


def test_nir_export_refuses_variables_above_odes_and_noise_by_name():
    from dynvision_dsl.check import check_module
    from dynvision_dsl.interop import InteropError
    from dynvision_dsl.interop.nir import leak_of, stage_of
    from dynvision_dsl.frontend.parse import parse

    def area(body):
        model, diags = check_module(parse(_spec(body)))
        assert model is not None, diags
        return model, model.areas["V1"]

    model, a = area("g = 1 + relu(input)\ntau * dr/dt = -r + input * g")
    with pytest.raises(InteropError, match="variable\\(s\\) g assigned above it"):
        leak_of(a, model)
    model, a = area("tau * dr/dt = -r + input + sigma * noise()")
    with pytest.raises(InteropError, match="noise"):
        leak_of(a, model)
    model, a = area("r = input + noise()")
    assert stage_of(a) is None
