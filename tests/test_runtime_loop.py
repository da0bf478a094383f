"""The runtime loop (templates/runtime.py.j2): delay rings give exactly the results of the
list history they replace, in both storage modes; the tensor ring allocates nothing per step;
recompute=K and recompute="auto" checkpoint segments with the plain run's gradients (noise,
dropout and weight norm replayed)."""
from pathlib import Path

import pytest
import torch

import dynvision_dsl as dd
from conftest import ROOT
from dynvision_dsl.checkpoint import load as load_checkpoint
from dynvision_dsl.cli import main
from test_train import TINY

ZOO = {"alexnet": {"size": 64, "steps": 2}, "resnet18": {"size": 32, "steps": 2},
       "cordsnet": {"size": 32, "steps": 3, "idle_steps": 2}, "cornet_rt": {"size": 32, "steps": 5}}
# the loop's corner cases: pass-through of delayed reads, a buffered input, silence, noise, t
VALID = ("state_link", "several_inputs", "idle_present_from", "noise_ou", "time_variable", "several_readouts")
pytestmark = pytest.mark.usefixtures("one_thread")
SPECS = sorted(ROOT.glob("specs/*.dyn")) + [ROOT / "tests" / "valid" / f"{n}.dyn" for n in VALID]


def legacy_simulate(model, frames, record, detach_every=0):
    """The loop as it was before the rings (main at 758d5fe): history as Python lists,
    appended and trimmed every step. The reference every ring result must equal bitwise."""
    like = next(iter(frames.values()))
    batch, steps = like.shape[0], like.shape[1]
    blank = {name: like.new_zeros((batch,) + shape) for name, shape in model.inputs.items()}
    states = {(a, v): None if init is None else like.new_full((batch,) + model.area_shapes[a], init)
              for a, v, init in model.state_slots}
    history = {}
    for source in model.buffer_len:
        first = None if source in model.inputs else states.get(model.signals[source][:2])
        history[source] = [] if first is None else [first]
    logits, responses = {name: [] for name in model.readouts}, {name: [] for name in record}
    n = len(model.readouts)
    for t in range(model.idle + steps):
        if detach_every and t and t % detach_every == 0:
            states = {key: None if v is None else v.detach() for key, v in states.items()}
            history = {key: [None if v is None else v.detach() for v in vs] for key, vs in history.items()}
        frame = {name: x[:, t - model.idle] for name, x in frames.items()} if t >= model.idle else blank
        k = model.variant_of[t] if t < len(model.variant_of) else model.steady
        args = []
        for kind, source, delay in model.step_inputs[k]:
            if kind == "frame":
                args.append(frame[source])
            elif kind == "read":
                args.append(history[source][-delay])
            elif kind == "time":
                args.append(like.new_full((), (t - model.idle) * model.dt))
            else:
                args.append(states[source, delay])
        outs = getattr(model, model.step_names[k])(*args)
        for i, (area, var, _) in enumerate(model.state_slots):
            states[area, var] = outs[i]
        for source, length in model.buffer_len.items():
            history[source].append(frame[source] if source in model.inputs else outs[model.signals[source][2]])
            if len(history[source]) > length:
                del history[source][0]
        if t >= model.idle:
            for name in responses:
                responses[name].append(outs[model.signals[name][2]])
            for i, (name, classes) in enumerate(model.readouts.items()):
                out = outs[i - n]
                logits[name].append(out if out is not None else like.new_zeros(batch, classes))
    stacked = {name: torch.stack(values, 1) for name, values in logits.items()}
    return (stacked if n > 1 else stacked[next(iter(stacked))]), responses


def _model(path: Path):
    torch.manual_seed(0)
    params = {"size": 32, "steps": 6, **ZOO.get(path.stem, {})} if path.parent.name == "specs" else None
    return dd.compile(path, params)


def _inputs(model, batch=2):
    g = torch.Generator().manual_seed(1)
    return {n: torch.randn((batch, model.steps) + tuple(s), generator=g) for n, s in model.inputs.items()}


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif a is None:
        assert b is None
    else:
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _total(logits):
    return logits.sum() if isinstance(logits, torch.Tensor) else sum(v.sum() for v in logits.values())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_rings_equal_the_list_history_bitwise_in_both_modes(path):
    model = _model(path)
    x, record = _inputs(model), list(model.signals)
    with torch.no_grad():  # the tensor ring
        _assert_same(model.simulate(x, record, seed=3), legacy_simulate_seeded(model, x, record, 3))
    model.train()
    got, want = [], []
    for run, out in ((model.simulate, got), (legacy_simulate_seeded, want)):  # the list ring, with backward
        model.zero_grad()
        logits, responses = run(x, record, seed=3, detach_every=2) if out is got else run(model, x, record, 3, 2)
        _total(logits).backward()
        out += [logits.detach() if isinstance(logits, torch.Tensor) else logits, responses,
                {n: p.grad for n, p in model.named_parameters()}]
    for a, b in zip(got, want):  # logits, recordings, parameter gradients
        _assert_same(a, b)


def legacy_simulate_seeded(model, x, record, seed, detach_every=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return legacy_simulate(model, model.frames((), x), record, detach_every)


def test_a_delayed_read_passed_through_is_recorded_before_its_slot_is_overwritten():
    model = _model(ROOT / "tests" / "valid" / "state_link.dyn")  # V2 = V1.c three steps late
    with torch.no_grad():
        _, responses = model.simulate(torch.zeros(1, 12, 1, 4, 4), ("V2",))
    assert [None if v is None else float(v.flatten()[0]) for v in responses["V2"]] == [None] * 2 + [
        float(c) for c in range(0, 10)]


def _dyrcnn(steps=7, **kw):
    torch.manual_seed(0)
    return dd.compile((ROOT / "specs" / "dyrcnn_x4.dyn").read_text(), {"size": 32, "steps": steps}, **kw)


def test_the_tensor_ring_allocates_nothing_per_step_in_the_steady_state():
    model = _dyrcnn(steps=12)
    for name in model.step_names:  # mark the step functions' own work in the profile
        real = getattr(model, name)

        def marked(*args, _real=real):
            with torch.profiler.record_function("step-function"):
                return _real(*args)
        setattr(model, name, marked)
    with torch.no_grad():
        loop = model.loop_start(torch.randn(2, 12, 3, 32, 32))
        for t in range(len(model.variant_of)):  # the transient variants
            model.loop_step(loop, t)
        assert loop.tensor_ring and set(loop.stores) == set(model.buffer_len)
        kept = {s: (id(store[1]), [v.data_ptr() for v in store[2]]) for s, store in loop.stores.items()}
        with torch.profiler.profile() as prof:
            for t in range(len(model.variant_of), 12):
                model.loop_step(loop, t)
    assert {s: (id(store[1]), [v.data_ptr() for v in store[2]]) for s, store in loop.stores.items()} == kept
    assert all(loop.rings[s][i] is loop.stores[s][2][i] for s in loop.rings for i in range(model.buffer_len[s]))
    own = [e.name for e in prof.events() if e.cpu_parent is None and e.name != "step-function"]
    assert own.count("aten::copy_") == 4 * (12 - len(model.variant_of))  # one write per source and step
    assert set(own) <= {"aten::copy_", "aten::select", "aten::as_strided"}, set(own)  # no allocation


def test_the_list_ring_carries_gradients_to_the_input_through_every_delay():
    model = _dyrcnn()
    x = torch.randn(2, 7, 3, 32, 32, requires_grad=True)
    loop = model.loop_start(x)
    assert not loop.tensor_ring
    logits, _ = model.simulate(x)
    logits[:, -1].sum().backward()
    assert x.grad[:, 0].abs().sum() > 0 and x.grad[:, -1].abs().sum() > 0


def _grads(model, x, k, seed=None, record=()):
    model.recompute = k
    model.zero_grad()
    logits, responses = model.simulate(x, record, seed=seed)
    (logits.sum() + sum(v.sum() for vs in responses.values() for v in vs if v is not None)).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("k", [1, 3, 5])  # 5 does not divide the 7 steps
def test_recompute_gives_the_plain_runs_gradients(k):
    model, x = _dyrcnn(), torch.randn(2, 7, 3, 32, 32)
    want_logits, want = _grads(model, x, 0, record=("V2",))
    calls = _count_steps(model)
    logits, got = _grads(model, x, k, record=("V2",))
    assert torch.equal(logits, want_logits) and got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)
    last = 7 % k or k
    assert sum(calls) == 2 * 7 - last  # recomputed in backward, except the last segment, which is kept


def _count_steps(model):
    """Count the step-function calls on this instance (a list that grows per call)."""
    calls = []
    for name in model.step_names:
        real = getattr(model, name)
        setattr(model, name, lambda *a, _real=real: calls.append(1) or _real(*a))
    return calls


def test_recompute_replays_noise_and_dropout_with_a_seed():
    torch.manual_seed(0)
    model = dd.compile(ROOT / "tests" / "valid" / "noise_ou.dyn")
    x = torch.rand(2, 40, 1, 32, 32)
    _, want = _grads(model, x, 0, seed=5)
    for k in (1, 7):
        _, got = _grads(model, x, k, seed=5)
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)
    _, other = _grads(model, x, 0, seed=6)
    assert any(not torch.allclose(other[n], want[n]) for n in want)  # the noise reaches the gradient
    torch.manual_seed(0)
    small = dd.compile(TINY).train()  # dropout 0.3 in the readout
    y = torch.rand(3, 4, 1, 12, 12)
    _, want = _grads(small, y, 0, seed=2)
    _, got = _grads(small, y, 2, seed=2)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)


def test_recompute_is_the_plain_loop_without_gradients_and_keeps_truncation():
    model, x = _dyrcnn(recompute=3), torch.randn(2, 7, 3, 32, 32)
    assert model.recompute == 3
    calls = _count_steps(model)
    with torch.no_grad():
        model(x)
    assert sum(calls) == 7
    model.recompute = 0
    plain = model.simulate(x, detach_every=2)[0]
    model.recompute = 3
    x.requires_grad_(True)
    a = torch.autograd.grad(model.simulate(x, detach_every=2)[0][:, -1].sum(), x)[0]
    model.recompute = 0
    b = torch.autograd.grad(model.simulate(x, detach_every=2)[0][:, -1].sum(), x)[0]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert a[:, :4].abs().sum() == 0 and a[:, -1].abs().sum() > 0  # nothing reaches back past the cut at 6
    assert plain.shape == (2, 7, 10)


@pytest.mark.parametrize("bad", [-1, 1.5, "2", "Auto", True])
def test_recompute_must_be_a_whole_number_of_steps(bad):
    with pytest.raises(ValueError, match="recompute takes the number of steps per checkpointed segment"):
        _dyrcnn().recompute = bad
    with pytest.raises(ValueError, match="got " + repr(bad).replace(".", r"\.")):
        _dyrcnn(recompute=bad)


def test_the_standalone_module_honours_recompute():
    from valid_helpers import standalone_of

    model = _dyrcnn()
    alone = standalone_of((ROOT / "specs" / "dyrcnn_x4.dyn").read_text(), model, {"size": 32, "steps": 7})
    x = torch.randn(2, 7, 3, 32, 32)
    _, want = _grads(model, x, 0)
    calls = _count_steps(alone)
    for k in (3, "auto"):
        calls.clear()
        _, got = _grads(alone, x, k)
        assert sum(calls) == 14 - alone._segment_lengths(alone.loop_start(x), 7)[-1]
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)


def _peak(lengths, step, end):
    """The cost model of recompute="auto": segment j's backward holds the ends of the segments
    before it, its own steps and the gradient of its end."""
    peak, held, t = 0, 0, 0
    for j, size in enumerate(lengths):
        last = t + size - 1
        peak = max(peak, held + sum(step[t:last + 1]) + (end[last] if j + 1 < len(lengths) else 0))
        held, t = held + end[last], t + size
    return peak


def test_balanced_segments_never_peak_above_a_uniform_k_and_cover_every_step():
    balanced = _dyrcnn()._balanced_segments
    assert balanced([1.0] * 9, [0.0] * 9) == [1] * 9  # free segment ends: one step each
    assert balanced([1.0] * 9, [100.0] * 9) == [9]  # ends dearer than the whole run: one segment
    step, end = [10.0] * 40, [25.0] * 40  # DyRCNNx4 at 64 px: an end holds 2.5 steps of activations
    lengths = balanced(step, end)
    assert sum(lengths) == 40 and lengths == sorted(lengths, reverse=True) and len(lengths) > 2
    uniform = [[k] * (40 // k) + ([40 % k] if 40 % k else []) for k in range(1, 41)]
    assert _peak(lengths, step, end) <= min(_peak(u, step, end) for u in uniform)
    cheap_start = balanced([5.0] * 4 + [10.0] * 36, [5.0, 10.0] + [25.0] * 38)  # areas that switch on late
    assert sum(cheap_start) == 40 and cheap_start[0] > lengths[0]


def test_recompute_auto_gives_the_plain_runs_gradients_and_measures_once():
    model, x = _dyrcnn(), torch.randn(2, 12, 3, 32, 32)
    want_logits, want = _grads(model, x, 0, record=("V2",))
    probes = []
    real = model._probe_costs
    model._probe_costs = lambda loop: probes.append(1) or real(loop)
    calls = _count_steps(model)
    state = torch.random.get_rng_state()
    logits, got = _grads(model, x, "auto", record=("V2",))
    assert torch.equal(torch.random.get_rng_state(), state)  # the probe draws nothing
    assert torch.equal(logits, want_logits) and got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)
    lengths = model._segment_lengths(model.loop_start(x), 12)
    assert sum(lengths) == 12 and 1 < len(lengths) < 12
    assert sum(calls) == 2 * 12 - lengths[-1] and probes == [1]  # the probe runs on a meta copy, not these steps
    _grads(model, torch.randn(3, 12, 3, 32, 32), "auto")  # another batch: the same costs per element
    assert probes == [1] and all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_recompute_auto_gives_the_plain_runs_gradients_on_every_spec(path):
    """Batch norm (resnet18) in training needs two values per channel: the probe runs at batch 2."""
    model = _model(path).train()
    x = _inputs(model)
    grads = []
    for k in (0, "auto"):
        model.recompute = k
        model.zero_grad()
        _total(model.simulate(x, seed=3)[0]).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, want in grads[0].items():
        torch.testing.assert_close(grads[1][name], want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [2, "auto"])
def test_recompute_with_weight_norm_reads_the_runs_weights_in_the_recomputation(k):
    """CordsNet's weight-normed weights are computed once per run; a checkpoint recomputation
    used to compute them again and fail torch's saved-tensor check (CheckpointError)."""
    torch.manual_seed(0)
    model = dd.compile((ROOT / "specs" / "cordsnet.dyn").read_text(), ZOO["cordsnet"]).train()
    x = torch.randn(2, 3, 3, 32, 32)
    _, want = _grads(model, x, 0)
    _, got = _grads(model, x, k)
    assert any(".parametrizations." in name for name in want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)


def test_recompute_under_bf16_recomputes_with_the_fp32_casts_and_gives_its_gradients():
    """The fp32 casts of bf16 (runtime/precision.py) are forward hooks that end with the forward;
    the recomputation in backward used to run without them and fail on a dtype."""
    from dynvision_dsl.runtime.precision import autocast

    model, x = _dyrcnn(steps=8), torch.randn(2, 8, 3, 32, 32)
    grads = {}
    for k in (0, 3, "auto"):
        model.recompute, _ = k, model.zero_grad()
        with autocast(model, "bf16", "cpu"):
            logits, _ = model.simulate(x)
        assert logits.dtype == torch.float32
        logits.sum().backward()
        grads[k] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert "_recompute_context" not in model.__dict__
    for k in (3, "auto"):
        for name, want in grads[0].items():
            torch.testing.assert_close(grads[k][name], want, atol=1e-6, rtol=0)


# ------------------------------------------------------------------ dynv train --recompute
from test_train_regimes import images, tiny  # noqa: E402,F401 (fixtures)


def test_train_with_recompute_learns_as_without(tiny, images, tmp_path, monkeypatch):
    import dynvision_dsl.science.train.loop as loop

    seen = []
    real = loop._Run.train_epoch

    def spy(self, epoch):
        seen.append(self.model.recompute)
        return real(self, epoch)

    monkeypatch.setattr(loop._Run, "train_epoch", spy)
    runs = {}
    for k, precision in ((0, "32"), (2, "32"), ("auto", "32"), (0, "bf16"), (2, "bf16")):
        out = tmp_path / f"k{k}{precision}"
        assert main(["train", str(tiny), "--set", "drop=0", "--data", f"folder:{images}", "--epochs", "1",
                     "--batch", "8", "--out", str(out), "--no-progress", "--recompute", str(k),
                     "--precision", precision]) == 0
        runs[k, precision] = load_checkpoint(out / "last.pt")
    assert seen == [0, 2, "auto", 0, 2] and runs[2, "32"].extra["args"]["recompute"] == 2
    for name, value in runs[0, "32"].model.items():
        torch.testing.assert_close(runs[2, "32"].model[name], value, atol=1e-5, rtol=0)
        torch.testing.assert_close(runs["auto", "32"].model[name], value, atol=1e-5, rtol=0)
        torch.testing.assert_close(runs[2, "bf16"].model[name], runs[0, "bf16"].model[name], atol=1e-5, rtol=0)


def _step_batches(model):
    """Wrap every step function to note the batch size of its first (frame) argument."""
    seen = []
    for name in model.step_names:
        fn = getattr(model, name)
        def wrapped(*args, _fn=fn):
            seen.append(args[0].shape[0])
            return _fn(*args)
        setattr(model, name, wrapped)
    return seen


def test_idle_steps_run_at_batch_one_and_widen_with_the_same_values_and_gradients():
    model = _model(ROOT / "specs" / "cordsnet.dyn")
    x = _inputs(model, batch=3)
    with torch.no_grad():
        want = legacy_simulate(model, model.frames((), x), ())[0]
    seen = _step_batches(model)
    with torch.no_grad():
        got = model.simulate(x)[0]
    assert seen == [1] * model.idle + [3] * model.steps
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    grads = []
    for run in (lambda: model.simulate(x)[0], lambda: legacy_simulate(model, model.frames((), x), ())[0]):
        model.zero_grad()
        run().sum().backward()  # the idle steps' gradients come back through the widening
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)


def test_idle_steps_keep_the_batch_when_elements_can_differ():
    model = _model(ROOT / "specs" / "cordsnet.dyn")
    x = _inputs(model, batch=3)
    model._draws_noise = True  # a step that draws noise() gives each element its own values
    seen = _step_batches(model)
    with torch.no_grad():
        model.simulate(x)
    assert seen == [3] * (model.idle + model.steps)
