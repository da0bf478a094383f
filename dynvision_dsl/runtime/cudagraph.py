"""CUDA-graph replay of the steady-state step, driven by the model's own loop (loop_start,
loop_step, loop_finish in templates/runtime.py.j2): `run_loop` sets `loop.call`, the loop's
step-call hook, through the loop's own `_simulate`, so the transient variants, the arguments,
the ring writes, the recordings and the logits stay the loop's, and only the steady variant's
call changes. It is captured once (per input shape and argument layout) into a
torch.cuda.CUDAGraph over static buffers and replayed, so a step costs one graph launch instead
of one launch per op. Per replayed step: copy each argument that is not already its static input
(frame, delayed reads from the tensor ring's rotating slots, `t`; the states are there, written
by the graph itself), replay, and hand the loop the static outputs, with the states as their
static inputs and clones of what it keeps past the step (recordings, logits). It uses only the
module's tables and loop methods, so it drives the emitted standalone module too. `capture`
makes the replay: the CUDA capture here, or `eager_capture`, the CPU stand-in with the same
buffer semantics (its outputs live in fixed tensors that each replay overwrites), which the
tests compare bitwise against the normal loop. Inference only: anything that cannot be replayed
faithfully (autograd, training mode, random draws, a CPU input) raises NotCapturable with the
reason, and `simulate` then runs the normal loop and says why in a RuntimeWarning."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch.overrides import TorchFunctionMode

Replay = Callable[[], tuple]  # runs the steady step on the static inputs; returns the static outputs
Capture = Callable[[Callable[..., tuple], list], Replay]
RANDOM = frozenset({"randn", "rand", "randint", "randn_like", "rand_like", "randint_like", "normal", "normal_",
                    "uniform_", "bernoulli", "bernoulli_", "multinomial", "poisson", "exponential_",
                    "random_", "rrelu", "randperm"})


class NotCapturable(Exception):
    """The steady step cannot be replayed from a CUDA graph; the message says why."""


class _Probe(TorchFunctionMode):
    """Watches one eager run of a step for what a graph cannot replay faithfully: a random draw
    (replayed, it would not match the eager run or its seed) or a tensor made on another device."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.problems = device, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", str(func))
        if name in RANDOM:
            self.problems.append(f"the steady step draws random numbers ({name}; noise() in the spec)")
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.device != self.device:
                self.problems.append(f"the steady step makes a tensor on {value.device} ({name}), not on "
                                     f"{self.device}")
        return out


def probe(step: Callable[..., tuple], static_in: list) -> None:
    """Run `step` (eager: a compiled one would recompile under the watching mode) once on the
    static inputs; raise NotCapturable naming the first problem."""
    device = next(a.device for a in static_in if isinstance(a, torch.Tensor))
    watch = _Probe(device)
    with watch:
        step(*static_in)
    if watch.problems:
        raise NotCapturable(watch.problems[0])


def unaliased(outs: tuple, args: list) -> tuple:
    """`outs` with every output that shares storage with an input cloned: the static inputs are
    overwritten before the next replay, so no output may live in one."""
    inputs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
    return tuple(o.clone() if isinstance(o, torch.Tensor) and o.untyped_storage().data_ptr() in inputs else o
                 for o in outs)


def eager_capture(step: Callable[..., tuple], static_in: list) -> Replay:
    """The CPU stand-in for `cuda_capture`: each replay runs `step` eagerly on the static inputs
    and leaves its outputs in the same static output tensors, as a replayed graph does."""
    static_out = tuple(None if o is None else torch.empty_like(o) for o in unaliased(step(*static_in), static_in))

    def replay() -> tuple:
        for buffer, value in zip(static_out, unaliased(step(*static_in), static_in)):
            if buffer is not None:
                buffer.copy_(value)
        return static_out
    return replay


def cuda_capture(step: Callable[..., tuple], static_in: list, warmup: int = 2) -> Replay:
    """Capture `step` on the static inputs into a CUDA graph (after `warmup` eager runs on a side
    stream, as torch requires); the replay returns the graph's static outputs."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step(*static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            static_out = unaliased(step(*static_in), static_in)
    except RuntimeError as exc:  # e.g. a host sync (.item()) inside the step
        raise NotCapturable(f"capturing the steady step failed: {str(exc).splitlines()[0]}") from None

    def replay() -> tuple:
        graph.replay()
        return static_out
    return replay


def why_not(model, like: torch.Tensor, capture: Capture) -> str | None:
    """The reason the run cannot use a graph, known before running anything (None: it can try)."""
    if torch.is_grad_enabled() and (like.requires_grad or any(p.requires_grad for p in model.parameters())):
        return "autograd is on (run under torch.no_grad() or torch.inference_mode())"
    if model.training:
        return "the model is in training mode (dropout, the gain bound's power iteration); call model.eval()"
    if capture is cuda_capture and like.device.type != "cuda":
        return f"the input is on {like.device}; CUDA graphs need a CUDA device (model.to('cuda'), x.to('cuda'))"
    if model.idle + like.shape[1] <= len(model.variant_of):
        return f"all {model.idle + like.shape[1]} steps are transient step variants; there is no steady step to replay"
    return None


def _key(model, frames: dict, capture: Capture) -> tuple:
    """What a cached capture depends on: the inputs' shapes, strides, dtypes and device, the
    weights' storage (a .to() or .half() makes new ones), autocast, and the step function."""
    shapes = tuple((n, tuple(x.shape), x[:, 0].stride(), x.dtype, x.device) for n, x in frames.items())
    weights = tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))
    device = next(iter(frames.values())).device.type
    autocast = torch.is_autocast_enabled(device) if device != "meta" else False
    modes = autocast, torch.is_inference_mode_enabled()  # inference tensors cannot be written outside it
    return shapes, hash(weights), modes, capture, getattr(model, model.step_names[model.steady])


@dataclass
class _Steady:
    """One captured steady step: its static inputs, the replay, and for each state output the
    static input the graph writes it into (the loop hands that buffer back as the next state)."""

    static_in: list
    replay: Replay
    held: dict


def _with_state_copies(step: Callable[..., tuple], pairs: list) -> Callable[..., tuple]:
    """The steady step, then each new state (output i) copied into its static input (argument j,
    for (j, i) in `pairs`): captured with the step, the copies are part of the graph."""
    def stepped(*args):
        outs = unaliased(step(*args), list(args))
        for j, i in pairs:
            args[j].copy_(outs[i])
        return outs
    return stepped


def _captured(model, step: Callable[..., tuple], args: list, capture: Capture) -> _Steady:
    """`step` captured on copies of `args` (probed first with the generated, eager step)."""
    static_in = [None if a is None else a.clone(memory_format=torch.preserve_format) for a in args]
    probe(getattr(type(model), model.step_names[model.steady]).__get__(model), static_in)
    slot = {(a, v): i for i, (a, v, _) in enumerate(model.state_slots)}
    pairs = [(j, slot[a, v]) for j, (kind, a, v) in enumerate(model.step_inputs[model.steady]) if kind == "state"]
    return _Steady(static_in, capture(_with_state_copies(step, pairs), static_in), {i: static_in[j] for j, i in pairs})


@dataclass
class _Call:
    """`loop.call` of one replayed run: step(*args) for the transient and tail variants, the
    replay for the steady one. `cache[key]` holds one capture per argument layout: the idle steps at batch 1
    (loop.narrow) and the widened ones differ."""

    model: object
    cache: dict
    key: tuple
    capture: Capture
    kept: frozenset  # outputs the loop keeps past the step: recorded signals, logits (negative)
    steady: _Steady | None = None
    narrow: bool = False  # loop.narrow when `steady` was taken

    def __call__(self, loop, t: int, step: Callable[..., tuple], args: list) -> tuple:
        model = self.model
        if t < len(model.variant_of) or step != getattr(model, model.step_names[model.steady]):  # or a tail step
            return step(*args)
        if self.steady is None or self.narrow != loop.narrow:
            self.steady, self.narrow = self._for(step, args), loop.narrow
        steady = self.steady
        for buffer, value in zip(steady.static_in, args):
            if value is not buffer and value.data_ptr() != buffer.data_ptr():
                buffer.copy_(value)
        outs = steady.replay()
        n = len(outs)
        return tuple(o.clone() if o is not None and (i in self.kept or i - n in self.kept) else steady.held.get(i, o)
                     for i, o in enumerate(outs))

    def _for(self, step: Callable[..., tuple], args: list) -> _Steady:
        """The capture for these arguments' layouts, made now if there is none; a step that
        cannot be captured leaves the reason in the cache, so the next run refuses at once."""
        layouts = tuple(None if a is None else (tuple(a.shape), a.stride(), a.dtype) for a in args)
        captures = self.cache[self.key]
        if layouts not in captures:
            try:
                captures[layouts] = _captured(self.model, step, args, self.capture)
            except NotCapturable as exc:
                self.cache[self.key] = str(exc)
                raise
        return captures[layouts]


def run_loop(model, frames: dict, record=(), capture: Capture = cuda_capture, detach_every: int = 0) -> tuple:
    """The model's loop with the steady step replayed: (logits, responses) as `model.simulate`
    returns them. Raises NotCapturable (before or at the capture) when it cannot replay."""
    like = next(iter(frames.values()))
    reason = why_not(model, like, capture)
    if reason is not None:
        raise NotCapturable(reason)
    cache, key = model.__dict__.setdefault("_dynv_cuda_graphs", {}), _key(model, frames, capture)
    if isinstance(cache.get(key), str):  # found not capturable before: say so again at once
        raise NotCapturable(cache[key])
    if key not in cache:  # one input shape per model: a new shape or device replaces the old graphs
        cache.clear()
        cache[key] = {}
    kept = {model.signals[name][2] for name in record} | {-1 - i for i in range(len(model.readouts))}
    return model._simulate(frames, record, detach_every, _Call(model, cache, key, capture, frozenset(kept)))


def simulate(model, x, record=(), seed: int | None = None, capture: Capture = cuda_capture,
             eager: Callable | None = None, detach_every: int = 0) -> tuple:
    """`model.simulate(x, record, seed, detach_every)` with the steady step replayed from a CUDA
    graph, or, where it cannot be (see NotCapturable), by `eager` (default: the model's own
    simulate) with a RuntimeWarning saying why. `seed` forks the RNG as the normal loop does."""
    frames = model.frames((), x) if isinstance(x, dict) else model.frames((x,))
    like = next(iter(frames.values()))
    devices = [like.device] if like.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            return run_loop(model, frames, record, capture, detach_every)
        except NotCapturable as exc:
            warnings.warn(f"cuda_graphs: running the steps eagerly: {exc}", RuntimeWarning, stacklevel=3)
    run = eager or (lambda m, *a: type(m).simulate(m, *a))
    return run(model, x, record, seed, detach_every)
