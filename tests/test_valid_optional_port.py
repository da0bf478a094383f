"""Optional ports (LANGUAGE.md 9.1) against an independent loop: an unfed `port fb` is silent
for the whole run (1 + tanh(fb) is 1), a fed one joins once its 2-step delay has elapsed."""
import pytest
import torch

import dynvision_dsl as dd
from valid_helpers import compile_valid, source, standalone

pytestmark = pytest.mark.backend


def _loop(image: torch.Tensor, feedback: bool, dt=2.0, tau=4.0, steps=8, delay=2):
    """Euler for tau * dr/dt = -r + input * (1 + tanh(fb)), fb = 2 * r(t - delay) once present."""
    r, out = torch.zeros_like(image), []
    for t in range(steps):
        fb = 2 * out[t - delay] if feedback and t >= delay else None  # V1 is present from step 0
        gain = 1 if fb is None else 1 + torch.tanh(fb)
        r = r + dt / tau * (-r + image * gain)
        out.append(r)
    return torch.stack(out, 1)


@pytest.mark.parametrize("feedback", [True, False])
def test_an_optional_port_is_silent_while_unfed_and_joins_after_its_delay(feedback):
    model = compile_valid("optional_port.dyn", {"feedback": str(feedback).lower()})
    image = torch.rand(2, 1, 2, 2) + 0.5
    run = model.run(image, record=["V1"])
    torch.testing.assert_close(run.responses["V1"], _loop(image, feedback), rtol=1e-6, atol=1e-6)


def test_the_fed_and_unfed_variants_differ_from_the_step_the_feedback_arrives():
    image = torch.rand(1, 1, 2, 2) + 0.5
    fed, unfed = (compile_valid("optional_port.dyn", {"feedback": v}).run(image, record=["V1"])
                  for v in ("true", "false"))
    same = (fed.responses["V1"] == unfed.responses["V1"]).flatten(2).all(2)[0]
    assert same.tolist() == [True, True] + [False] * 6  # fb = V2 two steps ago arrives at step 2


def test_the_emitted_module_matches():
    model = compile_valid("optional_port.dyn", {"feedback": "false"})
    image = torch.rand(2, 1, 2, 2)
    torch.testing.assert_close(standalone("optional_port.dyn", model, {"feedback": "false"})(image), model(image),
                               rtol=0, atol=0)


def test_without_the_port_declaration_the_unfed_name_is_an_error_at_the_name():
    text = source("optional_port.dyn").replace("  port fb\n", "")
    with pytest.raises(dd.DynError) as info:
        dd.compile(text, params={"feedback": "false"}, file="optional_port.dyn")
    first = info.value.errors[0]
    assert first.code == "E052" and "unknown name 'fb'" in first.message
    line = text.splitlines()[first.span.line - 1]
    assert line[first.span.col - 1:first.span.col + 1] == "fb"
