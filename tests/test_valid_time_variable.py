"""The time variable t (LANGUAGE.md 9.6) against an independent loop: t = (n - idle) * dt
in ms at internal step n, so it is negative during the idle steps, whose state carries over."""
import pytest
import torch

import dynvision_dsl as dd
from valid_helpers import compile_valid, source, standalone

pytestmark = pytest.mark.backend


def _loop(image: torch.Tensor, dt=2.0, tau=4.0, steps=8, idle=3):
    """Euler for tau * dr/dt = -r + input * (t >= 4 ms) + 0.1 * t / (1 ms), r = 0 at step -1;
    the input is blank while idle. Returns the recorded steps (B, steps, C, H, W)."""
    r = torch.zeros_like(image)
    out = []
    for n in range(idle + steps):
        t = (n - idle) * dt
        frame = image if n >= idle else torch.zeros_like(image)
        r = r + dt / tau * (-r + frame * float(t >= 4.0) + 0.1 * t)
        if n >= idle:
            out.append(r)
    return torch.stack(out, 1)


@pytest.mark.parametrize("idle", [3, 0, 5])
def test_t_matches_an_independent_loop_including_idle_steps(idle):
    model = compile_valid("time_variable.dyn", {"idle": idle})
    image = torch.rand(2, 1, 2, 2)
    run = model.run(image, record=["A", "Gate"])
    torch.testing.assert_close(run.responses["A"], _loop(image, idle=idle), rtol=1e-6, atol=1e-6)
    gate = torch.stack([image * float(2.0 * n >= 10.0) for n in range(8)], 1)
    torch.testing.assert_close(run.responses["Gate"], gate, rtol=0, atol=0)


def test_idle_steps_see_negative_times():
    model = compile_valid("time_variable.dyn", {"idle": 3})
    # with a blank image A integrates only 0.1 * t: idle steps at -6, -4, -2 ms pull it below zero
    run = model.run(torch.zeros(1, 1, 2, 2), record=["A"])
    assert run.responses["A"][0, 0, 0, 0, 0] < 0
    torch.testing.assert_close(run.responses["A"], _loop(torch.zeros(1, 1, 2, 2)), rtol=1e-6, atol=1e-6)


def test_the_standalone_module_passes_t_alike():
    model = compile_valid("time_variable.dyn")
    x = torch.rand(2, 1, 2, 2)
    emitted = standalone("time_variable.dyn", model)
    torch.testing.assert_close(emitted(x), model(x), rtol=0, atol=0)
    assert 'elif kind == "time"' in dd.emit(source("time_variable.dyn"))


def test_t_has_the_dimension_time():
    spec = source("time_variable.dyn").replace("(t >= 4 ms)", "(t >= 4)")
    errors = [d for d in dd.check(spec, file="t.dyn") if d.is_error]
    assert errors[0].message == "cannot compare 't' (time, ms) with a dimensionless value"
