"""Reductions over channels and space (LANGUAGE.md 9.4) against torch's closed forms:
each is computed per position (channels) or per channel (space) and broadcast back."""
import pytest
import torch

import dynvision_dsl as dd
from valid_helpers import compile_valid, standalone

pytestmark = pytest.mark.backend


def _expected(x: torch.Tensor) -> dict[str, torch.Tensor]:
    full = x.shape
    return {
        "MeanC": x.mean(1, keepdim=True).expand(full),
        "SumC": x.sum(1, keepdim=True).expand(full),
        "MaxC": x.amax(1, keepdim=True).expand(full),
        "MeanS": x.mean((2, 3), keepdim=True).expand(full),
        "SumS": x.sum((2, 3), keepdim=True).expand(full),
        "Norm": x / (1 + x.abs().mean(1, keepdim=True)) - torch.clamp(x, min=0.5),
    }


def test_reductions_match_torch():
    model = compile_valid("reductions.dyn")
    x = torch.randn(2, 3, 4, 5)
    run = model.run(x)
    for area, want in _expected(x).items():
        for step in range(2):
            torch.testing.assert_close(run.responses[area][:, step], want, rtol=1e-6, atol=1e-6, msg=area)


def test_the_standalone_module_reduces_alike():
    model = compile_valid("reductions.dyn")
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(standalone("reductions.dyn", model)(x), model(x), rtol=0, atol=0)


SPEC = """time {{ dt = 1 ms  steps = 2 }}
input image [2, 3, 3]
area A [2] {{ r = {expr} }}
image -> A : identity
readout A : avgpool | linear(2)
"""


def _first_error(expr: str):
    return next(d for d in dd.check(SPEC.format(expr=expr), file="r.dyn") if d.is_error)


def test_a_constant_reduces_to_its_closed_form():
    model = dd.compile(SPEC.format(expr="input + sum(2, channels) + mean(3, space) + sum(1, space)"))
    x = torch.rand(1, 2, 3, 3)
    torch.testing.assert_close(model.run(x).responses["A"][:, 0], x + 2 * 2 + 3 + 9, rtol=0, atol=1e-6)


def test_reductions_keep_the_dimension_of_their_value():
    assert "cannot add" in _first_error("input + mean(input * 1 ms, channels)").message


def test_a_reduction_over_something_else_is_located():
    err = _first_error("mean(input, chanels)")
    assert (err.code, err.span.col) == ("E121", 30)
    assert err.message == "mean() reduces over 'channels' or 'space', not 'chanels' (did you mean 'channels'?)"
    assert _first_error("sum(input)").code == "E122"
    # max with another second argument stays the elementwise max
    assert [d for d in dd.check(SPEC.format(expr="max(input, 0.5)")) if d.is_error] == []


def test_nir_export_names_a_reduction_instead_of_writing_it_as_pointwise():
    from dynvision_dsl.interop import nir as dnir

    problems = dnir.problems(compile_valid("reductions.dyn").program.model)
    want = "area MeanC: it has no ODE and uses mean(x, channels) (a reduction, not a pointwise function)"
    assert any(p.startswith(want) for p in problems), problems
