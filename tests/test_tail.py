"""Tail variants (backend/tail.py): the last steps of a run leave out what no later output needs,
and give the very logits and gradients of the full steps."""
import pytest
import torch

import dynvision_dsl as dd

from conftest import ROOT, SPECS
from test_runtime_devices import VALID, small

CHAIN = """
model Chain
time { dt = 2 ms  steps = 6 }
input image [2, 8, 8]
area V1 [4] { r = relu(input) }
area V2 [4] { r = input }
image -> V1 : conv(3)
V1 -> V2 : conv(3), delay 4 ms
readout V2 : avgpool | linear(3)
"""


def ran(model, x, **kw):
    """The logits of model.simulate(x, **kw) and the names of the step functions it called, in order."""
    names = []
    for name in dict.fromkeys(model.step_names):
        step = getattr(model, name)
        setattr(model, name, lambda *a, _s=step, _n=name: names.append(_n) or _s(*a))
    try:
        return model.simulate(x, **kw)[0], names
    finally:
        for name in set(model.step_names):
            delattr(model, name)


def test_a_delayed_chain_skips_the_source_in_the_last_two_steps():
    """V2 reads V1 two steps late and holds no state: the last two steps need V2 only."""
    torch.manual_seed(0)
    model = dd.compile(CHAIN).eval()
    assert len(model.tail_variants) == 2
    tails = [model.step_names[k] for k in model.tail_variants]
    source = model.program.functions[model.tail_variants[0]].source
    assert "V1_r = " not in source and "V1_r_delayed_2" in source
    x = torch.randn(2, 12, 2, 8, 8)  # steps past the transient ones
    assert len(model.variant_of) <= 10
    with torch.no_grad():
        got, names = ran(model, x)
        full, full_names = ran(model, x, record=["V1"])
    assert names[-2:] == tails[::-1] and not set(tails) & set(full_names)
    assert torch.equal(got, full)


def test_cornet_rts_last_step_runs_only_its_it():
    torch.manual_seed(0)
    model = dd.compile(ROOT / "specs" / "cornet_rt.dyn", {"size": 64, "steps": 5, "classes": 10}).eval()
    source = model.program.functions[model.tail_variants[0]].source
    assert "IT_from_IT_mid = " in source and "IT.conv2.weight" in source  # IT.conv2 runs (as gemm_conv)
    assert not any(f"self.{conv}(" in source or f"{conv}.weight" in source for conv in ("V1.conv", "V2.conv", "V4.conv"))
    assert "IT.conv.weight" not in source and "V1_r = " not in source
    _, names = ran(model, torch.rand(1, 5, 3, 64, 64))  # the presence-only gates folded, three steps shrink
    assert names == ["_step_0", "_step_1", "_tail_2", "_tail_1", "_tail_0"]


@pytest.mark.parametrize("path", SPECS + VALID, ids=lambda p: p.stem)
def test_tails_give_the_full_steps_logits_and_gradients(path):
    """Every zoo and corner-case spec: the run with its tail equals the run that records (no tail),
    forward bitwise, and its parameter gradients to rounding."""
    torch.manual_seed(0)
    model = dd.compile(path, small(path)).eval()
    torch.manual_seed(1)
    x = {name: torch.rand(2, 3, *shape) for name, shape in model.inputs.items()}
    record = [model.areas[0]]
    with torch.no_grad():
        got, full = model.simulate(x, seed=2)[0], model.simulate(x, record=record, seed=2)[0]
    _equal(got, full, torch.equal)
    grads = []
    for kw in ({}, {"record": record}):
        model.zero_grad()
        logits = model.simulate(x, seed=2, **kw)[0]
        loss = sum(v.sum() for v in (logits.values() if isinstance(logits, dict) else [logits]))
        if not loss.requires_grad:  # nothing trainable reaches the logits
            return
        loss.backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def _equal(a, b, same):
    if isinstance(a, dict):
        assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    else:
        assert same(a, b)


def test_no_tail_when_a_step_draws_noise_or_dropout_trains():
    """Leaving out a draw would change the others, and a batch norm's statistics would miss a step."""
    noise = ROOT / "tests" / "valid" / "noise_ou.dyn"
    assert dd.compile(noise, small(noise)).tail_variants == ()
    torch.manual_seed(0)
    model = dd.compile(CHAIN.replace("V1 -> V2 : conv(3)", "V1 -> V2 : dropout(0.5) | conv(3)"))
    x = torch.randn(2, 12, 2, 8, 8)
    tails = {model.step_names[k] for k in model.tail_variants}
    assert tails and tails & set(ran(model.eval(), x)[1])
    assert not tails & set(ran(model.train(), x)[1])


def test_tails_under_recompute_and_the_cuda_graph_loop_give_the_same_run():
    """Checkpointed segments recompute through the tail, and the CUDA-graph loop runs the tail
    steps as they are (an eager stand-in for the capture) while replaying the steady one."""
    from dynvision_dsl.runtime.cudagraph import eager_capture, run_loop

    torch.manual_seed(0)
    model = dd.compile(CHAIN)
    x = torch.randn(2, 12, 2, 8, 8)
    grads = []
    for k in (0, 2, 0):
        model.recompute = k
        model.zero_grad()
        model.simulate(x, record=["V1"] if len(grads) == 2 else ())[0].sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for got in grads[:2]:
        assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(got, grads[2]))
    model.eval()
    with torch.no_grad():
        replayed, _ = run_loop(model, model.frames((x,)), (), eager_capture)
        assert torch.equal(replayed, model(x))


def test_no_tail_while_a_gain_bound_trains():
    """A gain bound's power iteration runs at each use while training: its buffer must see every step."""
    torch.manual_seed(0)
    model = dd.compile(CHAIN.replace("readout V2", "V1 -> V1 : lateral(full, 3, max_gain=0.9), delay 2 ms\nreadout V2"))
    x = torch.randn(2, 12, 2, 8, 8)
    tails = {model.step_names[k] for k in model.tail_variants}
    assert tails and tails & set(ran(model.eval(), x)[1])
    buffers = []
    for record in ((), ["V1"]):  # from the same start
        start = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        _, names = ran(model, x, record=record)
        assert not tails & set(names)
        buffers.append({k: v.clone() for k, v in model.state_dict().items() if k.endswith(".u")})
        model.load_state_dict(start)
    assert buffers[0] and all(torch.equal(buffers[0][k], buffers[1][k]) for k in buffers[0])


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_tails_reach_into_idle_steps_at_batch_one_and_widen(frames):
    """A short run: the tail begins in the idle steps, which run at batch 1 and widen at the
    first shown frame, where some states and ring slots are None."""
    path = ROOT / "specs" / "cordsnet.dyn"
    torch.manual_seed(0)
    model = dd.compile(path, small(path, {"idle_steps": 4})).eval()
    assert model.idle == 4 and model.tail_variants
    x = torch.rand(3, frames, 3, *model.input_shape[1:])
    with torch.no_grad():
        got, names = ran(model, x)
        full, _ = ran(model, x, record=[model.areas[0]])
    assert set(names) & {model.step_names[k] for k in model.tail_variants}
    assert torch.equal(got, full)
