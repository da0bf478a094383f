"""`solver NAME` from a string param and a parenthesised coefficient (LANGUAGE.md 9.10),
against the closed forms of tau' * dr/dt = -r + I with tau' = 2 * tau, r(0) = 0:
one step multiplies the distance to I by a solver's factor of h = dt / tau'."""
import math

import pytest
import torch

import dynvision_dsl as dd
from valid_helpers import compile_valid, source, standalone

pytestmark = pytest.mark.backend

H = 1.0 / (2 * 5.0)  # dt / (2 * tau)
FACTOR = {"euler": 1 - H, "rk4": 1 - H + H ** 2 / 2 - H ** 3 / 6 + H ** 4 / 24, "exponential": math.exp(-H)}


@pytest.mark.parametrize("solver", ["rk4", "euler", "exponential"])
def test_the_param_selects_the_solver(solver):
    params = None if solver == "rk4" else {"integrator": solver}
    model = compile_valid("solver_param.dyn", params)
    assert model.program.model.areas["A"].solver == solver
    x = torch.rand(2, 1, 2, 2)
    got = model.run(x).responses["A"]
    want = torch.stack([x * (1 - FACTOR[solver] ** (n + 1)) for n in range(6)], 1)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_the_standalone_module_uses_the_chosen_solver():
    model = compile_valid("solver_param.dyn", {"integrator": "exponential"})
    x = torch.rand(1, 1, 2, 2)
    emitted = standalone("solver_param.dyn", model, {"integrator": "exponential"})
    torch.testing.assert_close(emitted(x), model(x), rtol=0, atol=0)


def _first_error(text: str, params=None):
    return next(d for d in dd.check(text, params=params, file="s.dyn") if d.is_error)


def test_an_unknown_solver_value_is_located_and_named():
    err = _first_error(source("solver_param.dyn"), {"integrator": "rk5"})
    assert (err.code, err.span.line, err.span.col) == ("E126", 12, 10)
    assert err.message == "solver param 'integrator' is \"rk5\", which is not a solver (did you mean 'rk4'?)"
    err = _first_error(source("solver_param.dyn").replace('"rk4"', "4"))
    assert err.code == "E127"


def test_a_parenthesised_coefficient_must_be_a_positive_time():
    text = source("solver_param.dyn")
    assert "must be a time" in _first_error(text.replace("(2 * tau)", "(2 * tau / tau)")).message
    assert "must be positive" in _first_error(text.replace("(2 * tau)", "(tau - 2 * tau)")).message
    typo = _first_error(text.replace("(2 * tau)", "(2 * tua)"))
    assert typo.message == "unknown param 'tua' (did you mean 'tau'?)" and typo.span.col == 8


def test_fmt_aligns_a_parenthesised_coefficient_at_its_own_star():
    from dynvision_dsl.tooling.fmt import format_source

    text = source("solver_param.dyn").replace("  (2 * tau) * dr/dt = -r + input\n",
                                              "  (2*tau) * dr/dt = -r + input\n  tau * da/dt = -a\n")
    assert "  (2 * tau) * dr/dt = -r + input\n  tau       * da/dt = -a\n" in format_source(text)
