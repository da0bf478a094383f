"""bf16 autocast with fp32 states (runtime/precision.py) as `dd.compile(..., precision="bf16")`
runs it: every state, variable and logit stays float32, the logits stay close to fp32's, and the
CUDA-graph protocol under autocast gives the eager autocast run."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.runtime.cudagraph import eager_capture, run_loop
from dynvision_dsl.runtime.execution import Execution
from dynvision_dsl.runtime.precision import autocast

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")
X4 = ROOT / "specs" / "dyrcnn_x4.dyn"


def pair(**params):
    """The same weights compiled plainly and with precision='bf16'."""
    torch.manual_seed(0)
    plain = dd.compile(X4, {"size": 32, "steps": 12, **params}).eval()
    torch.manual_seed(0)
    return plain, dd.compile(X4, {"size": 32, "steps": 12, **params}, precision="bf16").eval()


def relative_error(got, want) -> float:
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("params", [{}, {"recurrence_gain": "0.9", "feedback": "mul"}], ids=str)
def test_bf16_keeps_states_fp32_and_the_logits_close(params):
    plain, half = pair(**params)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want = plain(x)
        got, recorded = half.simulate(x, record=list(half.signals))
    assert got.dtype == torch.float32
    assert {v.dtype for values in recorded.values() for v in values if v is not None} == {torch.float32}
    error = relative_error(got, want)
    assert 0 < error < 3e-2, error  # bf16 has 8 bits of mantissa: ~0.4% per product, not bitwise
    assert not any(h for m in half.modules() for h in m._forward_hooks.values())  # hooks gone afterwards


def test_the_replay_protocol_under_bf16_matches_the_eager_bf16_run():
    _, half = pair()
    x = {"image": torch.rand(2, 12, 3, 32, 32)}
    half.execution = None
    with torch.no_grad(), autocast(half, "bf16", "cpu", cache=False):
        want = half.simulate(x)[0]
        got = run_loop(half, half.frames((), x), (), eager_capture)[0]
    assert torch.equal(got, want)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of 32, bf16, got 'fp16'"):
        Execution(precision="fp16")
