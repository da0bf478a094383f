"""Stage 5: fx lowering and its passes. Each pass: node counts before and
after, plus numerical equality of the optimised and unoptimised models."""
import operator

import pytest
import torch
import torch.fx as fx

import dynvision_dsl as dd
from dynvision_dsl import passes
from dynvision_dsl.pipeline import build

pytestmark = pytest.mark.backend

LEAKY = """
model Leaky
time { dt = 2 ms  steps = 6 }
input image [2, 8, 8]
param tau = 5 ms
area V1 [4] {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V2 [4] {
  tau * dr/dt = -r + input + rec
  solver rk4
}
image -> V1 : conv(3)
V1 -> V2 : conv(3), delay 2 ms
V2 -> V2.rec : conv(1), delay 4 ms
readout V2 : avgpool | linear(3)
"""


def _graph():
    g = fx.Graph()
    x = g.placeholder("x")
    s = g.placeholder("s")
    s.meta["silent"] = True
    a = g.call_function(torch.relu, (x,))
    b = g.call_function(torch.tanh, (s,))          # silent: tanh of silent
    c = g.call_function(operator.add, (1.0, b))     # 1 + tanh(silent) -> 1
    d = g.call_function(operator.mul, (a, c))
    e = g.call_function(operator.sub, (s, d))       # silent - d -> -d
    g.output((d, e, b))
    return g


def test_drop_silent_applies_the_rules():
    g = _graph()
    assert passes.drop_silent(g)
    nodes = {n.name: n for n in g.nodes}
    out = [n for n in g.nodes if n.op == "output"][0].args[0]
    assert out[2] is None                            # a silent output becomes None
    assert "s" not in nodes and "tanh" not in nodes  # silent nodes and placeholders are gone
    assert out[0].args[1] == 1.0                     # 1 + tanh(fb) is 1 while fb is silent
    assert out[1].target is operator.neg             # silent - d is -d


def test_fold_and_simplify():
    g = fx.Graph()
    x = g.placeholder("x")
    h = g.call_function(operator.truediv, (2.0, 5.0))
    m = g.call_function(operator.mul, (h, x))
    one = g.call_function(operator.mul, (m, 1.0))
    g.output((one,))
    assert passes.fold_constants(g)
    assert passes.simplify(g)
    ops = [n for n in g.nodes if n.op == "call_function"]
    assert len(ops) == 1 and ops[0].args[0] == pytest.approx(0.4)


def test_fuse_leaky_update_counts_and_values():
    g = fx.Graph()
    r, i = g.placeholder("r"), g.placeholder("i")
    d = g.call_function(operator.sub, (i, r))
    m = g.call_function(operator.mul, (0.4, d))
    a = g.call_function(operator.add, (r, m))
    g.output((a,))
    before = len(g.nodes)
    gm_ref = fx.GraphModule(torch.nn.Module(), fx.Graph())
    assert passes.fuse_leaky_update(g)
    assert len(g.nodes) == before - 2
    fused = [n for n in g.nodes if n.target is torch.lerp]
    assert len(fused) == 1
    rt, it = torch.randn(3), torch.randn(3)
    gm = fx.GraphModule(torch.nn.Module(), g)
    assert torch.allclose(gm(rt, it)[0], rt + 0.4 * (it - rt))
    del gm_ref


def test_common_subexpressions_merge_repeated_calls():
    g = fx.Graph()
    x = g.placeholder("x")
    a = g.call_function(torch.relu, (x,))
    b = g.call_function(torch.relu, (x,))
    g.output((g.call_function(operator.add, (a, b)),))
    assert passes.common_subexpressions(g)
    assert sum(n.target is torch.relu for n in g.nodes) == 1


def test_optimised_equals_unoptimised():
    torch.manual_seed(0)
    fast = dd.compile(LEAKY)
    slow = dd.compile(LEAKY, optimize=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.rand(2, 6, 2, 8, 8)
    with torch.no_grad():
        assert torch.allclose(fast(x), slow(x), atol=1e-6)
    assert fast.code.count("\n") < slow.code.count("\n")


def test_time_invariant_steps_share_one_graph():
    program, _ = build(LEAKY)
    # step 0: V2 silent; 1: V2 driven; 2: V1 state present; 3+: recurrence joins ...
    assert program.schedule.variant_of[-1] == program.schedule.steady
    assert len(program.steps) == len(set(program.schedule.variant_of))
    assert len(program.steps) <= 5


def test_passes_report_changes_and_code_points_to_spec_lines():
    program, _ = build(LEAKY)
    step = program.steps[-1]
    assert step.passes["drop_silent"] is True           # it resolves the `r = relu(r)` keep_if_silent marker
    assert step.passes["lean_training_ops"] is True     # the Euler step and ReLU fused in place
    assert step.passes["fold_constants"]
    assert "euler_relu_(" in step.source                # Euler leak fused (with its ReLU, ops_autograd)
    assert "# <string>:7 (V1): tau * dr/dt = -r + input" in step.source
    assert "keep_if_silent" not in step.source


def test_rk4_inputs_held_and_computed_once():
    program, _ = build(LEAKY)
    src = program.steps[-1].source
    assert src.count("self.V1_to_V2.conv(") == 1          # the port is computed once for four stages
