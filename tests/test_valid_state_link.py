"""State links (LANGUAGE.md 9.3): `V1.c -> V2.inh` reads state c of V1 and `V1.g -> V3` its
variable g, buffered and delayed like an output, present from the state's own presence; the
arrival steps and values against the closed form, recordings of `V1.c`, and the errors."""
import pytest
import torch

import dynvision_dsl as dd

from valid_helpers import VALID, compiled, standalone

SPEC = VALID / "state_link.dyn"
STEPS, TAU, DT = 12, 4.0, 1.0


def _leak(t: int) -> float:
    """r after step t of euler's `tau dr/dt = -r + 1` from silence: 1 - (1 - dt/tau)^(t + 1)."""
    return 1 - (1 - DT / TAU) ** (t + 1)


def test_a_delayed_state_arrives_at_the_closed_form_steps():
    model = compiled("state_link")
    run = model.run(torch.ones(1, 1, 4, 4), record=["V1.c", "V1.g", "V2", "V3"])
    value = lambda name: run.responses[name][0, :, 0, 0, 0].tolist()  # noqa: E731
    assert value("V1.c") == [t + 1.0 for t in range(STEPS)]  # c = c + 1 after each step
    # c has an initial value, so it is present "at step -1": 3 ms later V2 reads it from step 2 on,
    # first the rest value 0, then c after step t - 3 = t - 2
    assert run.present["V2"].tolist() == [t >= 2 for t in range(STEPS)]
    assert value("V2") == [0.0] * 2 + [t - 2.0 for t in range(2, STEPS)]
    # g = 2 r is present once r is (step 0); 2 ms later V3 gets g of step t - 2
    assert run.present["V3"].tolist() == [t >= 2 for t in range(STEPS)]
    assert value("V3") == pytest.approx([0.0] * 2 + [2 * _leak(t - 2) for t in range(2, STEPS)], abs=1e-6)
    assert value("V1.g") == pytest.approx([2 * _leak(t) for t in range(STEPS)], abs=1e-6)
    assert model.graph.nodes["V2"]["present_from"] == 2 and model.graph.nodes["V3"]["present_from"] == 2


def test_the_emitted_module_buffers_the_state_the_same_way():
    model = compiled("state_link")
    module = standalone("state_link", model)
    x = torch.rand(2, 1, 4, 4)
    ours, raw = module.simulate(x, record=("V1.c", "V2"))
    assert torch.equal(ours, model(x))
    assert [v is None for v in raw["V2"]] == [t < 2 for t in range(STEPS)]
    assert torch.equal(raw["V2"][5], raw["V1.c"][2])


def test_a_state_without_an_initial_value_is_silent_until_it_is_driven():
    text = SPEC.read_text().replace("V1.c -> V2.inh   : identity, delay 3 ms", "V1.r -> V2.inh : identity, delay 3 ms")
    model = dd.compile(text)
    run = model.run(torch.ones(1, 1, 4, 4), record=["V2"])
    assert run.present["V2"].tolist() == [t >= 3 for t in range(STEPS)]  # r is present from step 0


@pytest.mark.parametrize("name, message", [
    ("V1.cc", "V1 has no state or variable 'cc' (did you mean 'V1.c'?)"),
    ("V9", "unknown area 'V9' (did you mean 'V1'?)"),
])
def test_recording_an_unknown_state_says_what_there_is(name, message):
    model = compiled("state_link")
    with pytest.raises(KeyError) as info:
        model.run(torch.ones(1, 1, 4, 4), record=[name])
    assert str(info.value) == repr(message)


@pytest.mark.parametrize("old, new, code, where, message", [
    ("V1.c -> V2.inh", "V1.cc -> V2.inh", "E153", (21, 4), "V1 has no state or variable 'cc' (did you mean 'c'?)"),
    ("V1.c -> V2.inh", "V1.input -> V2.inh", "E152", (21, 4), "'input' is a port of V1"),
    ("V1.c -> V2.inh", "image.c -> V2.inh", "E152", (21, 7), "the input 'image' has no states to read"),
])
def test_a_bad_state_link_is_an_error_at_its_name(old, new, code, where, message):
    errors = [d for d in dd.check(SPEC.read_text().replace(old, new)) if d.is_error]
    assert errors and errors[0].code == code, errors
    assert (errors[0].span.line, errors[0].span.col) == where and message in errors[0].message
