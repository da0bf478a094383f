"""CUDA-graph replay of the steady step (runtime/cudagraph.py), driven by the model's own loop
through its step-call hook (loop.call in loop_step). Its static-buffer protocol runs on the CPU
with `eager_capture` in place of the graph (outputs in fixed tensors that each replay
overwrites, as a graph's are) and must give bitwise the logits and recordings of the normal
loop for every zoo spec; what cannot be replayed falls back to the normal loop, saying why."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.runtime import cudagraph
from dynvision_dsl.runtime.cudagraph import NotCapturable, eager_capture, run_loop

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


def test_the_replay_reads_the_loops_tensor_ring_by_delay_into_static_inputs_of_its_layout(monkeypatch):
    """The steady step's delayed reads are the loop's ring slots (t - delay) mod length; the
    replay copies them into static inputs of the same strides (channels-last stays so), while
    the states, after the first replayed step, are the static inputs the graph wrote."""
    model = compiled(ROOT / "specs" / "dyrcnn_x4.dyn")
    seen, loops, original = [], [], cudagraph._Call.__call__

    def spy(self, loop, t, step, args):
        seen.append((t, list(args), self.steady))
        out = original(self, loop, t, step, args)
        seen[-1] = (t, seen[-1][1], self.steady if step.__name__ == model.step_names[model.steady] else None)
        return out

    monkeypatch.setattr(cudagraph._Call, "__call__", spy)
    monkeypatch.setattr(model, "loop_start", lambda *a: loops.append(type(model).loop_start(model, *a)) or loops[-1])
    with torch.no_grad():
        run_loop(model, model.frames((), inputs(model)), (), eager_capture)
    reads = [(j, source, delay) for j, (kind, source, delay) in enumerate(model.step_inputs[model.steady])
             if kind == "read"]
    ring_views = {source: views for source, (_, _, views) in loops[0].stores.items()}
    replayed = [(t, args, steady) for t, args, steady in seen  # the tail steps run as they are
                if t >= len(model.variant_of) and steady is not None]
    assert reads and len(replayed) == 3 and all(steady is replayed[0][2] for _, _, steady in replayed)
    for t, args, steady in replayed:
        for j, source, delay in reads:
            assert args[j] is ring_views[source][(t - delay) % model.buffer_len[source]]
            assert steady.static_in[j].stride() == args[j].stride() and steady.static_in[j] is not args[j]
    assert any(a.dim() == 4 and a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous()
               for a in replayed[0][2].static_in)
    states = [j for j, (kind, _, _) in enumerate(model.step_inputs[model.steady]) if kind == "state"]
    assert states and all(args[j] is steady.static_in[j] for _, args, steady in replayed[1:] for j in states)
    assert not any(replayed[0][1][j] is replayed[0][2].static_in[j] for j in states)  # the first copies them in


def test_the_replay_runs_the_loops_own_loop_step(monkeypatch):
    """No second loop: every step, transient or replayed, is the model's loop_step, and the
    steady ones go through the capture's replay."""
    model = compiled(ROOT / "specs" / "dyrcnn_x2.dyn")
    steps, replays = [], []

    def counting(step, static_in):
        replay = eager_capture(step, static_in)
        return lambda: (replays.append(1), replay())[1]

    monkeypatch.setattr(model, "loop_step", lambda loop, t: (steps.append(t), type(model).loop_step(model, loop, t))[1])
    x = inputs(model)
    with torch.no_grad():
        got, _ = run_loop(model, model.frames((), x), (), counting)
        monkeypatch.undo()
        assert torch.equal(got, model.simulate(x)[0])
    assert steps == list(range(model.idle + x["image"].shape[1]))
    assert len(replays) == model.idle + x["image"].shape[1] - len(model.variant_of)
    assert not hasattr(cudagraph, "Ring") and not hasattr(cudagraph, "_record")


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


def test_idle_steps_at_batch_one_replay_from_their_own_capture_and_a_second_run_reuses_both():
    """CordsNet's steady variant starts inside its idle steps, which the loop runs at batch 1
    (loop.narrow) until the first frame widens them: one capture each, both kept."""
    model = compiled(ROOT / "specs" / "cordsnet.dyn", {"idle_steps": 8})
    assert model.idle > len(model.variant_of)
    batches = []

    def counting(step, static_in):
        batches.append(static_in[0].shape[0])
        return eager_capture(step, static_in)

    x = inputs(model)
    with torch.no_grad():
        for _ in range(2):
            assert torch.equal(run_loop(model, model.frames((), x), (), counting)[0], model.simulate(x)[0])
    assert batches == [1, 2]
    assert_same_run(model, x)


@pytest.mark.parametrize("path", [ROOT / "specs" / "dyrcnn_x4.dyn", ROOT / "specs" / "cornet_rt.dyn"],
                         ids=lambda p: p.stem)
def test_detach_every_replays_bitwise_and_cuda_graphs_no_longer_skip_it(path):
    """Truncation only cuts autograd, which a replay never has: the replayed run with
    detach_every equals the normal one, and dd.compile(cuda_graphs=True) tries to replay it
    (on the CPU, falling back with the device reason) instead of running eagerly unasked."""
    model = compiled(path)
    x = inputs(model)
    with torch.no_grad():
        want, want_rec = model.simulate(x, record=list(model.signals), detach_every=2)
        got, got_rec = run_loop(model, model.frames((), x), list(model.signals), eager_capture, detach_every=2)
        assert torch.equal(got, want)
        assert all(a is None and b is None or torch.equal(a, b)
                   for name in want_rec for a, b in zip(want_rec[name], got_rec[name], strict=True))
        torch.manual_seed(0)
        graphed = dd.compile(path, small(path), cuda_graphs=True).eval()
        with pytest.warns(RuntimeWarning, match="CUDA graphs need a CUDA device"):
            assert torch.equal(graphed.simulate(x, detach_every=2)[0], want)


def test_the_standalone_module_replays_through_its_own_loop():
    """The emitted module (torch only) carries the same loop and hook: cudagraph drives it too."""
    from valid_helpers import standalone_of

    spec = ROOT / "specs" / "dyrcnn_x2.dyn"
    torch.manual_seed(0)
    alone = standalone_of(spec.read_text(), params=small(spec)).eval()
    assert_same_run(alone, inputs(alone))
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="CUDA graphs need a CUDA device"):
        cudagraph.simulate(alone, inputs(alone))
