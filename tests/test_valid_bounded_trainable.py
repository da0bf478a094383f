"""Bounded, per-channel trainable params (LANGUAGE.md 9.9): the initial value is exactly the
declared one, gradients reach the raw parameter, an optimiser step with a huge learning rate
leaves the value within its bounds (a reparametrisation, not a clamp), `per = channel` gives
one value per channel, and the errors for bounds that are wrong."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.lower import exact_raw
from dynvision_dsl.layers import Bounded

from valid_helpers import VALID, compiled, standalone

SPEC = VALID / "bounded_trainable.dyn"
BOUNDS = {"V1.tau": (1.0, 100.0, 5.0, (3, 1, 1)), "V2.tau": (2.0, None, 7.0, ()),
          "V2.gain": (None, 1.0, 0.5, (2, 1, 1))}


def _value(model, path):
    return model.get_submodule(path)()


def test_initial_values_are_exactly_the_declared_ones_with_one_per_channel():
    model = compiled("bounded_trainable")
    for path, (_, _, init, shape) in BOUNDS.items():
        value = _value(model, path)
        assert value.shape == shape and torch.equal(value, torch.full(shape, init))
    assert model.V3.tau.shape == (2, 1, 1) and torch.equal(model.V3.tau.detach(), torch.full((2, 1, 1), 3.0))
    names = set(model.state_dict())
    assert {"V1.tau.raw", "V2.tau.raw", "V2.gain.raw", "V3.tau"} <= names


@pytest.mark.parametrize("value, lo, hi", [(5.0, 1.0, 100.0), (0.3, 0.1, 0.7), (7.0, 2.0, None), (1e-3, 0.0, None),
                                           (0.5, None, 1.0), (123.456, None, 1000.0), (9.99, 0.0, 10.0),
                                           (0.3, -1000.0, None), (1.2345, 1.0, 1e6), (-3.3, -5.0, 7.0)])
def test_the_raw_start_hits_the_declared_value_exactly(value, lo, hi):
    raw, scale, shift = exact_raw(value, lo, hi)
    got = Bounded((), raw, lo, hi, scale, shift)()
    for extreme in (-1e30, 1e30):  # the bounds hold at the ends of the float32 range as well
        end = Bounded((), extreme, lo, hi, scale, shift)().item()
        assert (lo is None or end >= lo) and (hi is None or end <= hi)
    assert got.item() == torch.tensor(value, dtype=torch.float32).item()


def test_gradients_flow_and_a_huge_step_stays_within_the_bounds():
    model = compiled("bounded_trainable")
    x = torch.rand(2, 1, 4, 4)
    model(x).square().sum().backward()
    for path in BOUNDS:
        grad = model.get_submodule(path).raw.grad
        assert grad is not None and bool((grad != 0).all()), path
    for sign in (1.0, -1.0):  # push every value up, then down, far beyond its bounds
        for path in BOUNDS:
            raw = model.get_submodule(path).raw
            raw.grad = None
            optimiser = torch.optim.SGD([raw], lr=1e6)
            (sign * _value(model, path).sum()).backward()
            optimiser.step()
            lo, hi, _, _ = BOUNDS[path]
            value = _value(model, path)
            assert torch.isfinite(value).all()
            assert (lo is None or bool((value >= lo).all())) and (hi is None or bool((value <= hi).all())), path
    assert torch.isfinite(model(x)).all()


def test_per_channel_time_constants_act_per_channel():
    """Euler from silence: step 0 gives dt/tau * I per channel (I the pointwise input)."""
    model = compiled("bounded_trainable")
    with torch.no_grad():
        model.V1.tau.raw.copy_(torch.tensor([0.0, -2.0, 2.0]).view(3, 1, 1))
    x = torch.rand(1, 1, 4, 4)
    run = model.run(x, record=["V1"])
    drive = model.image_to_V1.pointwise(x)
    assert torch.allclose(run.responses["V1"][:, 0], drive / model.V1.tau(), atol=1e-6)


def test_the_emitted_module_has_the_same_parameters_and_values():
    model = compiled("bounded_trainable")
    module = standalone("bounded_trainable", model)
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(module(x), model(x)) and set(module.state_dict()) == set(model.state_dict())


@pytest.mark.parametrize("old, new, code, where, message", [
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(min = 6 ms, max = 100 ms)", "E158", (11, 36),
     "the initial value of 'tau', 5 ms, is not above min = 6 ms"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(min = dt, max = 4 ms)", "E158", (11, 46),
     "the initial value of 'tau', 5 ms, is not below max = 4 ms"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(min = 5 ms)", "E158", (11, 36),
     "the initial value of 'tau', 5 ms, is not above min = 5 ms"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(min = 9 ms, max = 8 ms)", "E157", (11, 48),
     "max = 8 ms is not above min = 9 ms"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(min = 1, max = 100 ms)", "E156", (11, 36),
     "min = 1 is dimensionless, but the param's initial value 5 ms is time, ms"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(mni = dt)", "E154", (11, 30),
     "unknown trainable option 'mni' (did you mean 'min'?)"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(dt)", "E154", (11, 30),
     "trainable options are named"),
    ("trainable(min = dt, max = 100 ms, per = channel)", "trainable(per = pixel)", "E155", (11, 36),
     "'per' takes 'channel'"),
])
def test_a_wrong_bound_is_an_error_at_the_bound(old, new, code, where, message):
    errors = [d for d in dd.check(SPEC.read_text().replace(old, new)) if d.is_error]
    assert errors and errors[0].code == code, errors
    assert (errors[0].span.line, errors[0].span.col) == where and message in errors[0].message


def test_min_may_name_the_time_step_when_no_param_is_called_dt():
    text = SPEC.read_text().replace("param dt = 1 ms", "").replace("dt = dt", "dt = 1 ms")
    assert not [d for d in dd.check(text) if d.is_error]


def test_fmt_keeps_the_options_and_writes_them_tight():
    from dynvision_dsl.tooling.fmt import format_source

    text = format_source(SPEC.read_text())
    assert "trainable(min=dt, max=100 ms, per=channel)" in text
    assert format_source(text) == text and not [d for d in dd.check(text) if d.is_error]


@pytest.mark.parametrize("spec, words", [("bounded_trainable", "the trainable V1.tau is bounded or per channel"),
                                         ("state_link", "V1.c -> V2.inh reads a state")])
def test_nir_export_refuses_what_nir_cannot_hold_in_one_line(spec, words, tmp_path, capsys):
    from dynvision_dsl.cli import main

    pytest.importorskip("nir")
    out = tmp_path / "x.nir"
    assert main(["export", str(VALID / f"{spec}.dyn"), "--to", "nir", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and not out.exists()
