"""Stage 4: silence analysis, evaluation order, delay buffers, variants."""
import pytest

from dynvision_dsl.check import check_module
from dynvision_dsl.frontend.parse import parse
from dynvision_dsl.schedule import build_schedule

pytestmark = pytest.mark.frontend

SPEC = """
model S
time {{ dt = 1 ms  steps = {steps}  idle = {idle} }}
input image [1, 8, 8]
param tau = 4 ms
area A [2] {{ tau * dr/dt = -r + input }}
area B [2] {{ tau * dr/dt = -r + input + back }}
area C [2] {{ r = relu(input) }}
area D [2] {{ state r = 0
             r = relu(input) }}
image -> A : conv(1)
A -> B : conv(1), delay 2 ms
C -> B.back : conv(1), delay 1 ms
B -> C : conv(1)
A -> D : conv(1), delay 5 ms
readout C : avgpool | linear(2), delay 1 ms
"""


def _schedule(steps=10, idle=0):
    model, diags = check_module(parse(SPEC.format(steps=steps, idle=idle)))
    assert model is not None, [d.message for d in diags]
    return model, build_schedule(model)


def test_present_from_follows_delays():
    _, s = _schedule()
    assert s.present_from == {"A": 0, "B": 2, "C": 2, "D": -1 + 1 or 0}
    assert s.present_from["D"] == 0          # at rest from the first step
    terms = s.term_present_from
    assert terms[0] == 0 and terms[1] == 2    # image -> A, A -> B (2 steps)
    assert terms[2] == 3                      # C -> B.back: C from 2, delay 1
    assert terms[4] == 5                      # A -> D delay 5
    assert terms[-1] == 3                     # readout: C from 2, delay 1


def test_order_is_topological_over_zero_delay_edges():
    _, s = _schedule()
    assert s.order.index("B") < s.order.index("C")


def test_buffers_sized_to_the_longest_read():
    _, s = _schedule()
    assert s.buffer_len == {"A": 5, "C": 1}


def test_variants_warm_up_then_steady():
    _, s = _schedule()
    assert s.variant_of[0] != s.variant_of[-1]
    assert s.variant(1000) == s.steady
    # once every term is present nothing changes
    assert len(set(s.variant_of[6:])) == 1


def test_idle_steps_come_first():
    _, s = _schedule(steps=4, idle=3)
    assert s.idle == 3
    assert len(s.variant_of) >= 7


def test_silent_readout_warns():
    model, diags = check_module(parse(SPEC.format(steps=2, idle=0)))
    s = build_schedule(model)
    assert any("readout is silent for the whole run" in d.message for d in s.diagnostics)
