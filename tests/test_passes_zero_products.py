"""fold_zero_products: a sum's product with the number zero, and a factor exp(0 * v), leave the
graph exactly where backend/shapes.py proves the result keeps the other operand's shape and
dtype; every broadcast, dtype and impure case is refused. On small graphs (node counts, values)
and through dd.compile of tiny specs (presence and logits as the unfolded build's)."""
from __future__ import annotations

import operator
from pathlib import Path

import pytest
import torch
import torch.fx as fx

import dynvision_dsl as dd
from dynvision_dsl.backend import shapes
from dynvision_dsl.backend.passes import NAMES
from dynvision_dsl.backend.passes.fold_zero_products import fold_zero_products
from dynvision_dsl.backend.runtime_ops import noise_sample
from dynvision_dsl.pipeline import build

pytestmark = pytest.mark.backend

ROOT = Path(__file__).resolve().parent.parent
FULL = (4, 3, 3)  # an area's (C, H, W); batched values are (B, C, H, W)


class _G:
    """A step graph under construction: placeholders with the facts the lowering records."""

    def __init__(self):
        self.g = fx.Graph()

    def map(self, name: str, shape=FULL, batched=True, model_dtype=True) -> fx.Node:
        return shapes.record(self.g.placeholder(name), shape, batched=batched, model_dtype=model_dtype)

    def fn(self, target, *args) -> fx.Node:
        return self.g.call_function(target, args)

    def zero(self, v, left=True) -> fx.Node:
        return self.fn(operator.mul, 0.0, v) if left else self.fn(operator.mul, v, 0.0)

    def out(self, *values) -> fx.Graph:
        self.g.output(tuple(values))
        return self.g


def _result(g: fx.Graph) -> fx.Node:
    return next(n for n in g.nodes if n.op == "output").args[0][0]


def _calls(g: fx.Graph) -> int:
    return sum(n.op == "call_function" for n in g.nodes)


_FOLDS = {  # what the pass turns into `a` (a and v full maps in the model's dtype)
    "a + 0*v": lambda b, a, v: b.fn(operator.add, a, b.zero(v)),
    "0*v + a": lambda b, a, v: b.fn(operator.add, b.zero(v), a),
    "a + v*0": lambda b, a, v: b.fn(operator.add, a, b.zero(v, left=False)),
    "a - 0*v": lambda b, a, v: b.fn(operator.sub, a, b.zero(v)),
    "a + 0*v*v": lambda b, a, v: b.fn(operator.add, a, b.fn(operator.mul, b.zero(v), v)),
    "a * exp(0*v)": lambda b, a, v: b.fn(operator.mul, a, b.fn(torch.exp, b.zero(v))),
    "exp(v*0) * a": lambda b, a, v: b.fn(operator.mul, b.fn(torch.exp, b.zero(v, left=False)), a),
    "(a + 0*v) + 0*v": lambda b, a, v: b.fn(operator.add, b.fn(operator.add, a, b.zero(v)), b.zero(v)),
}


@pytest.mark.parametrize("case", list(_FOLDS))
def test_folds_to_the_other_operand_with_the_same_values(case):
    b = _G()
    a, v = b.map("a"), b.map("v")
    g = b.out(_FOLDS[case](b, a, v))
    ref = fx.GraphModule(torch.nn.Module(), g)
    xa, xv = torch.randn(2, *FULL), torch.randn(2, *FULL)
    want = ref(xa, xv)[0]
    assert fold_zero_products(g)
    assert _result(g) is a and _calls(g) == 0                 # the products left the graph
    got = fx.GraphModule(torch.nn.Module(), g)(xa, xv)[0]
    assert torch.equal(got, want)


def test_a_smaller_product_broadcast_into_a_folds():
    b = _G()
    a, p = b.map("a"), b.map("p", (4, 1, 1), batched=False)  # a per-channel trainable as the gate
    g = b.out(b.fn(operator.add, a, b.zero(p)))
    assert fold_zero_products(g) and _result(g) is a


def _refused(build_value) -> None:
    b = _G()
    g = b.out(build_value(b))
    before = [(n.op, n.target) for n in g.nodes]
    assert not fold_zero_products(g)
    assert [(n.op, n.target) for n in g.nodes] == before


_REFUSED = {  # the sum has the product's shape (or an unknown one), not the other operand's
    "1 + 0*v (a number)": lambda b: b.fn(operator.add, 1.0, b.zero(b.map("v"))),
    "scalar param + 0*v": lambda b: b.fn(operator.add, b.map("p", (), batched=False), b.zero(b.map("v"))),
    "per-channel param + 0*v": lambda b: b.fn(operator.add, b.map("p", (4, 1, 1), batched=False), b.zero(b.map("v"))),
    "mean over space (kept dims) + 0*v": lambda b: b.fn(
        operator.add, b.fn(torch.mean, b.map("x"), (-2, -1), True), b.zero(b.map("v"))),
    "sum over channels (kept dims) * exp(0*v)": lambda b: b.fn(
        operator.mul, b.fn(torch.sum, b.map("x"), (-3,), True), b.fn(torch.exp, b.zero(b.map("v")))),
    "t + 0*v": lambda b: b.fn(operator.add, b.map("t", (), batched=False), b.zero(b.map("v"))),
    "unbatched (1, C, H, W) + 0*v": lambda b: b.fn(operator.add, b.map("u", (1, *FULL), batched=False),
                                                   b.zero(b.map("v"))),
    "(B, C, H, W) + 0*(B, C, H, W) of another size": lambda b: b.fn(
        operator.add, b.map("a"), b.zero(b.map("v", (4, 6, 6)))),
    "unknown shape + 0*v": lambda b: b.fn(operator.add, b.g.placeholder("q"), b.zero(b.map("v"))),
    "a + 0*unknown": lambda b: b.fn(operator.add, b.map("a"), b.zero(b.g.placeholder("q"))),
    "2 * exp(0*v) (a number)": lambda b: b.fn(operator.mul, 2.0, b.fn(torch.exp, b.zero(b.map("v")))),
}


@pytest.mark.parametrize("case", list(_REFUSED))
def test_refuses_where_the_shape_is_not_provably_the_other_operands(case):
    _refused(_REFUSED[case])


_DTYPE = {  # the shapes agree, but the other factor's dtype could promote the sum
    "a + 0*t (t: not the model's dtype)": lambda b: b.fn(
        operator.add, b.map("a"), b.zero(b.map("t", (), batched=False, model_dtype=False))),
    "frame + 0*v (a frame: any dtype)": lambda b: b.fn(operator.add, b.map("x", model_dtype=False),
                                                       b.zero(b.map("v"))),
    "a + 0*(v > 0)": lambda b: b.fn(operator.add, b.map("a"), b.zero(b.fn(torch.gt, b.map("v"), 0.0))),
}


@pytest.mark.parametrize("case", list(_DTYPE))
def test_refuses_where_the_dtype_is_not_provably_the_other_operands(case):
    _refused(_DTYPE[case])


def test_a_noise_draw_is_never_dropped():
    """0 * noise() + a: the shapes and dtypes agree, but dropping the draw shifts every later sample."""
    def value(b):
        x = b.map("x")
        return b.fn(operator.add, b.map("a"), b.zero(b.fn(operator.mul, b.fn(noise_sample, x, FULL), 0.5)))
    _refused(value)


def test_a_module_call_read_only_by_the_product_stays_one_read_elsewhere_folds():
    """A module call that would leave with the product may have side effects in training (batch
    norm statistics, dropout, a gain bound's power iteration): refused; read elsewhere too, folded."""
    for also_returned in (False, True):
        b = _G()
        a = b.map("a")
        conv = shapes.record(b.g.call_module("conv", (b.map("x"),)), FULL, model_dtype=True)
        total = b.fn(operator.add, a, b.zero(conv))
        g = b.out(total, conv) if also_returned else b.out(total)
        assert fold_zero_products(g) is also_returned
        assert (_result(g) is a) is also_returned


def test_a_fact_copied_onto_another_node_does_not_hold_there():
    """Passes copy meta on rewrites (broadcast_unbatched copies an as_map marker's onto a `size`):
    a recorded shape names its node's op and target."""
    b = _G()
    a = b.map("a")
    other = b.fn(torch.flatten, b.map("x"), 1)
    other.meta.update(a.meta)
    g = b.out(b.fn(operator.add, other, b.zero(b.map("v"))))
    assert shapes.infer(g)[other].shape is None
    assert not fold_zero_products(g)


def test_shapes_follow_the_ops():
    b = _G()
    x, p = b.map("x"), b.map("p", (4, 1, 1), batched=False)
    mean = b.fn(torch.mean, x, (-2, -1), True)
    back = b.g.call_method("expand_as", (mean, x))
    scaled = b.fn(operator.mul, b.fn(torch.relu, back), p)
    noise = b.fn(noise_sample, x, FULL)
    norm = shapes.record_function(b.g.call_module("norm", (scaled,)), "groupnorm")
    bias = shapes.record_function(b.g.call_module("bias", ()), "bias")  # not known to keep a shape
    frame = b.map("frame", model_dtype=False)
    zeros = b.g.call_method("new_zeros", (frame, (b.g.call_method("size", (x, 0)), *FULL)))  # broadcast_unbatched
    g = b.out(mean, back, scaled, noise, norm, bias, zeros)
    info = shapes.infer(g)
    assert info[zeros] == shapes.Info(("B", *FULL), False)   # in the frame's dtype
    assert info[mean] == shapes.Info(("B", 4, 1, 1), True)
    assert info[back].shape == info[scaled].shape == info[norm].shape == ("B", *FULL)
    assert info[scaled].model_dtype and info[norm].model_dtype
    assert info[noise] == shapes.Info(("B", *FULL), True)      # in its `like`'s dtype
    assert info[bias] == shapes.UNKNOWN
    assert shapes.broadcast(("B", 4, 1, 1), (4, 3, 3)) == ("B", 4, 3, 3)
    assert shapes.broadcast(("B", 4), (1, 4)) == ("B", 4)
    assert shapes.broadcast(("B", 4), (2, 4)) is None           # right only if the batch is 2
    assert shapes.broadcast((4, 3), (2, 3)) is None


# ---------------------------------------------------------------- through dd.compile
_SPEC = """
model Gate
time {{ dt = 1 ms  steps = 6 }}
input image [2, 8, 8]
area B [4] {{ r = input }}
area A [4] {{
  param w = 0.5 trainable(per = channel)
  y = input + gate           # every port read, whatever r reads
  r = {expr}
  output r
}}
image -> B : conv(3)
B -> A : identity, delay 2 ms
B -> A.gate : identity
readout A : avgpool | linear(3)
"""
FOLDED = {  # expression of A's r: the step A is present from (0: the gate wakes it, a sum)
    "relu(groupnorm(input, 2) as A.norm) + 0 * gate": 0,
    "tanh(mean(groupnorm(input, 2) as A.norm, space)) * exp(0 * gate)": 2,  # a product waits for input
    "groupnorm(input, 2) as A.norm - 0 * gate * w": 0,
}
KEPT = {  # the sum has the gate's shape (a number, a per-channel param), or a dtype not the model's
    "1 + 0 * gate": 0,
    "w + 0 * gate": 0,
    "0.5 * exp(0 * gate)": 0,
    "input + 0 * gate": 0,                   # input is a delayed read: its dtype is the caller's
    "groupnorm(input, 2) as A.norm + 0 * (t / 1 ms)": 0,  # t is present at once
    "groupnorm(input, 2) as A.norm + 0 * noise()": 0,  # noise() is present at once
}


def _steady(source: str) -> str:
    program, _ = build(source)
    return program.steps[program.schedule.variant_of[-1]].source


@pytest.mark.parametrize("expr", sorted(FOLDED) + sorted(KEPT))
def test_compiled_spec_keeps_presence_and_logits(expr):
    source = _SPEC.format(expr=expr)
    fast, slow = dd.compile(source), dd.compile(source, optimize=False)
    slow.load_state_dict(fast.state_dict())
    assert fast.present_from == slow.present_from == {"B": 0, "A": {**FOLDED, **KEPT}[expr]}
    x = torch.rand(2, 6, 2, 8, 8)
    with torch.no_grad():
        torch.manual_seed(1)
        want = slow(x)
        torch.manual_seed(1)
        got = fast(x)
    assert torch.allclose(got, want, atol=1e-6, rtol=1e-5)
    steady = _steady(source)
    assert ("0.0 *" in steady) is (expr in KEPT), steady


def test_the_pass_runs_after_fold_constants_and_is_skipped_unoptimised():
    assert NAMES.index("fold_constants") < NAMES.index("fold_zero_products") < NAMES.index("simplify")
    source = _SPEC.format(expr="relu(groupnorm(input, 2) as A.norm) + (1 - 1) * gate")
    program, _ = build(source)
    assert program.steps[program.schedule.variant_of[-1]].passes["fold_zero_products"]
    slow, _ = build(source, optimize=False)
    assert "fold_zero_products" not in slow.steps[-1].passes


def test_cornet_steady_step_multiplies_no_convolution_by_zero():
    source = (ROOT / "specs" / "cornet_rt.dyn").read_text()
    program, _ = build(source, {"size": 64})
    steady = program.steps[program.schedule.variant_of[-1]]
    assert steady.passes["fold_zero_products"]
    assert "0.0 *" not in steady.source and "torch.exp(" not in steady.source
    assert "IT_rec=IT_r," in steady.source                 # exp(0 * gate) is 1: IT_rec is IT's output
    for line in program.steps[0].source.splitlines():      # step 0: the gates are the only present terms
        if "0.0 *" in line:
            assert line.strip().split(" = ")[0] in {"V2_mid_r", "V4_mid_r"}, line


def test_a_param_set_to_zero_is_the_number_zero():
    """`param g = 0` is folded into the step as the number 0 (a named constant): g * gate is a zero product."""
    source = _SPEC.replace("input image [2, 8, 8]", "input image [2, 8, 8]\nparam g = 0").format(
        expr="relu(groupnorm(input, 2) as A.norm) + g * gate")
    assert "g * gate" in source and "0.0 *" not in _steady(source)
    program, _ = build(source)
    assert program.steps[program.schedule.variant_of[-1]].passes["fold_zero_products"]
