"""CUDA-graph replay of the steady step (runtime/cudagraph.py). Its static-buffer protocol runs
on the CPU with `eager_capture` in place of the graph (outputs in fixed tensors that each replay
overwrites, as a graph's are) and must give bitwise the logits and recordings of the normal loop
for every zoo spec; what cannot be replayed falls back to the normal loop, saying why."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.runtime import cudagraph
from dynvision_dsl.runtime.cudagraph import NotCapturable, Ring, eager_capture, run_loop

from conftest import ROOT, SPECS
from test_runtime_devices import VALID, small

pytestmark = pytest.mark.usefixtures("one_thread")
NOISY = ROOT / "tests" / "valid" / "noise_ou.dyn"


def compiled(path, extra=None):
    torch.manual_seed(0)
    return dd.compile(path, small(path, extra)).eval()


def inputs(model, batch=2):
    """A movie per input, 3 steps past the last transient variant."""
    torch.manual_seed(1)
    steps = max(1, len(model.variant_of) - model.idle) + 3
    return {name: torch.rand(batch, steps, *shape) for name, shape in model.inputs.items()}


def assert_same_run(model, x):
    """The replayed run equals the normal loop bit for bit: logits and every recorded signal."""
    with torch.no_grad():
        want, want_rec = model.simulate(x, record=list(model.signals))
        got, got_rec = run_loop(model, model.frames((), x), list(model.signals), eager_capture)
    want, got = (want, got) if isinstance(want, dict) else ({"": want}, {"": got})
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    for name, values in want_rec.items():
        assert [v is None for v in values] == [v is None for v in got_rec[name]], name
        assert all(a is None or torch.equal(a, b) for a, b in zip(values, got_rec[name])), name


def test_ring_reads_by_delay_and_keeps_strides():
    ring = Ring(3)
    first = torch.rand(1, 4, 2, 2).to(memory_format=torch.channels_last)
    ring.write(first)
    ring.write(None)
    ring.write(first * 2)
    assert torch.equal(ring.read(1), first * 2) and ring.read(2) is None and torch.equal(ring.read(3), first)
    assert ring.slots[0].stride() == first.stride()
    ring.write(first * 3)  # overwrites the oldest
    assert torch.equal(ring.read(1), first * 3) and torch.equal(ring.read(2), first * 2)


@pytest.mark.parametrize("path", [p for p in SPECS] + [p for p in VALID if p != NOISY], ids=lambda p: p.stem)
def test_the_static_buffer_protocol_gives_the_normal_loops_run_bitwise(path):
    model = compiled(path)
    assert_same_run(model, inputs(model))


@pytest.mark.parametrize("extra", [{"recurrence": "local"}, {"recurrence": "self", "feedback": "mul"},
                                   {"recurrence_gain": "0.9", "feedback": "add"}], ids=str)
def test_zoo_variants_replay_bitwise(extra):
    model = compiled(ROOT / "specs" / "dyrcnn_x4.dyn", extra)
    assert_same_run(model, inputs(model))


def test_a_second_run_reuses_the_capture_and_a_new_batch_replaces_it():
    model = compiled(ROOT / "specs" / "dyrcnn_x2.dyn")
    calls = []

    def counting(step, static_in):
        calls.append(len(static_in))
        return eager_capture(step, static_in)

    with torch.no_grad():
        for batch in (2, 2, 3):
            x = inputs(model, batch)
            got, _ = run_loop(model, model.frames((), x), (), counting)
            assert torch.equal(got, model.simulate(x)[0])
    assert len(calls) == 2 and len(model.__dict__["_dynv_cuda_graphs"]) == 1


def test_replayed_outputs_are_fresh_even_when_a_step_passes_an_input_through():
    """A step output that is one of its inputs would be overwritten by the next step's copy."""
    static = [torch.ones(2)]
    replay = eager_capture(lambda a: (a, a * 2), static)
    out = replay()
    static[0].copy_(torch.full((2,), 5.0))
    assert out[0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("setup, reason", [
    (lambda m: m.train(), "the model is in training mode"),
    (lambda m: torch.set_grad_enabled(True), "autograd is on (run under torch.no_grad() or torch.inference_mode())"),
])
def test_what_cannot_replay_says_why(setup, reason):
    model = compiled(ROOT / "specs" / "dyrcnn_x2.dyn")
    x = inputs(model)
    with torch.no_grad():
        setup(model)
        with pytest.raises(NotCapturable, match=reason.replace("(", r"\(").replace(")", r"\)")):
            run_loop(model, model.frames((), x), (), eager_capture)


def test_noise_and_cpu_inputs_fall_back_to_the_normal_loop_with_a_warning():
    model = compiled(NOISY)
    x = inputs(model)
    with torch.no_grad():
        with pytest.raises(NotCapturable, match=r"the steady step draws random numbers \(randn; noise\(\)"):
            run_loop(model, model.frames((), x), (), eager_capture)
        want = model.simulate(x, seed=4)[0]
        with pytest.warns(RuntimeWarning, match="cuda_graphs: running the steps eagerly: the steady step draws"):
            got = cudagraph.simulate(model, x, seed=4, capture=eager_capture)[0]
        assert torch.equal(got, want)
        with pytest.warns(RuntimeWarning, match="the input is on cpu; CUDA graphs need a CUDA device"):
            cudagraph.simulate(model, x, seed=4)


def test_dd_compile_cuda_graphs_on_the_cpu_runs_eagerly_and_says_why():
    spec = ROOT / "specs" / "dyrcnn_x2.dyn"
    torch.manual_seed(0)
    graphed = dd.compile(spec, small(spec), cuda_graphs=True).eval()
    plain = compiled(spec)
    x = inputs(plain)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="CUDA graphs need a CUDA device"):
        assert torch.equal(graphed(x["image"]), plain(x["image"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_replay_matches_eager_on_the_gpu():
    model = compiled(ROOT / "specs" / "dyrcnn_x4.dyn").cuda()
    x = {k: v.cuda() for k, v in inputs(model).items()}
    with torch.no_grad():
        want = model.simulate(x)[0]
        got = run_loop(model, model.frames((), x), ())[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_capture_made_under_inference_mode_is_not_reused_outside_it():
    model = compiled(ROOT / "specs" / "dyrcnn_x2.dyn")
    x = inputs(model)
    with torch.inference_mode():
        first, _ = run_loop(model, model.frames((), x), (), eager_capture)
    with torch.no_grad():  # writing into inference tensors here would raise
        again, _ = run_loop(model, model.frames((), x), (), eager_capture)
    assert torch.equal(first, again)


def test_a_step_found_not_capturable_is_not_probed_again(monkeypatch):
    model = compiled(NOISY)
    x = inputs(model)
    probes, original = [], cudagraph.probe
    monkeypatch.setattr(cudagraph, "probe", lambda step, static: (probes.append(1), original(step, static)))
    with torch.no_grad():
        for _ in range(2):
            with pytest.raises(NotCapturable, match="draws random numbers"):
                run_loop(model, model.frames((), x), (), eager_capture)
    assert probes == [1]
