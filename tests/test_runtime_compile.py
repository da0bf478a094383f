"""torch.compile of the step functions (never of the unrolled loop): `model.compile_steps`
swaps each step for its compiled form, reports the compile time, and gives the same logits."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.runtime.execution import eager_steps

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = """model Tiny
time { dt = 1 ms  steps = 6 }
input image [1, 8, 8]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area A [2] : leaky(tau=2 ms)
image -> A : conv(3)
A -> A : conv(3), delay 2 ms
readout A : avgpool | linear(3)
"""


def check_compiled(**options):
    torch.manual_seed(0)
    model = dd.compile(TINY).eval()
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        want = model(x)
        seconds = model.compile_steps(x, **options)
        got = model(x)
    assert isinstance(seconds, float) and seconds > 0
    assert set(model.step_names) <= set(vars(model))  # the steps, not the loop, are compiled
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    eager_steps(model)
    assert not set(model.step_names) & set(vars(model))
    return seconds


def test_compile_steps_swaps_each_step_and_reports_the_time():
    pytest.importorskip("torch._dynamo")
    check_compiled(backend="eager")  # dynamo's tracing without code generation: seconds


@pytest.mark.slow
def test_compile_steps_with_inductor():
    try:
        seconds = check_compiled()
    except Exception as exc:  # no C compiler, or inductor unsupported on this platform
        if "inductor" in type(exc).__module__ or "Inductor" in type(exc).__name__:
            pytest.skip(f"inductor is unusable here: {exc}")
        raise
    print(f"compile_steps (inductor): {seconds:.1f} s")
