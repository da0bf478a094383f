"""CUDA-graph replay of the steady-state step: the transient step variants run eagerly, then
the steady variant is captured once into a torch.cuda.CUDAGraph over static buffers and
replayed for every later step, so a step costs one graph launch instead of one launch per op.

The driver reads only the compiled module's tables (`step_names`, `step_inputs`,
`variant_of`, `steady`, `state_slots`, `buffer_len`, `signals`, `readouts`, `idle`, `dt`),
so it works for the emitted standalone module too. Its static-buffer protocol, per steady step:
copy the step's inputs (frame, delayed reads from the ring, `t`) into the static input buffers,
replay (the graph itself writes the new states back into their static inputs), copy the outputs
on (signals into the rings, logits into the preallocated logits, recordings as clones). `capture` makes the replay: the
CUDA capture here, or `eager_capture`, the CPU stand-in with the same buffer semantics (its
outputs live in fixed tensors that each replay overwrites), which the tests compare bitwise
against the normal loop. Inference only: anything that cannot be replayed faithfully (autograd,
training mode, random draws, a CPU input) raises NotCapturable with the reason, and `simulate`
then runs the normal loop and says why in a RuntimeWarning."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
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


@dataclass
class Ring:
    """The last `length` values of one signal in preallocated slots (allocated like the first
    value written, strides included), indexed by delay: read(1) is the latest write."""

    length: int
    slots: list = field(default_factory=list)
    present: list = field(default_factory=list)
    head: int = 0

    def write(self, value: torch.Tensor | None) -> None:
        if value is not None:
            if not self.slots:
                self.slots = [torch.empty_like(value) for _ in range(self.length)]
                self.present = [False] * self.length
            self.slots[self.head].copy_(value)
        if self.present:
            self.present[self.head] = value is not None
        self.head = (self.head + 1) % self.length

    def read(self, delay: int) -> torch.Tensor | None:
        i = (self.head - delay) % self.length
        return self.slots[i] if self.present and self.present[i] else None


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
    """The captured steady step: its static inputs and the replay."""

    static_in: list
    replay: Replay


def _arguments(model, k: int, frame: dict, states: dict, rings: dict, time: float, like) -> list:
    """The inputs of step variant k, in its `step_inputs` order."""
    args = []
    for kind, source, delay in model.step_inputs[k]:
        if kind == "frame":
            args.append(frame[source])
        elif kind == "read":
            args.append(rings[source].read(delay))
        elif kind == "time":
            args.append(like.new_full((), time))
        else:
            args.append(states[source, delay])
    return args


def _with_state_copies(model, step: Callable[..., tuple]) -> Callable[..., tuple]:
    """The steady step, then each new state copied into its static input buffer: captured with
    the step, the copies are part of the graph (no launch of their own per step)."""
    slot = {(a, v): i for i, (a, v, _) in enumerate(model.state_slots)}
    pairs = [(j, slot[a, v]) for j, (kind, a, v) in enumerate(model.step_inputs[model.steady]) if kind == "state"]

    def stepped(*args):
        outs = unaliased(step(*args), list(args))
        for j, i in pairs:
            args[j].copy_(outs[i])
        return outs
    return stepped


def _steady_step(model, cache: dict, key, args: list, capture: Capture) -> _Steady:
    """The cached capture for `key`, or a new one on copies of this step's inputs (probed first
    with the generated, eager step). A step that cannot be captured is remembered as the reason."""
    if key not in cache:
        static_in = [a.clone(memory_format=torch.preserve_format) for a in args]
        name = model.step_names[model.steady]
        cache.clear()  # one capture per model: a new shape or device replaces the old graph
        try:
            probe(getattr(type(model), name).__get__(model), static_in)
            cache[key] = _Steady(static_in, capture(_with_state_copies(model, getattr(model, name)), static_in))
        except NotCapturable as exc:
            cache[key] = str(exc)
            raise
    return cache[key]


def _replay(model, steady: _Steady, args: list, first: bool) -> tuple:
    """Copy this step's inputs into the static buffers (states only on the first steady step:
    later ones are there already, written by the replay itself) and replay."""
    for (kind, _, _), buffer, value in zip(model.step_inputs[model.steady], steady.static_in, args):
        if kind != "state" or first:
            buffer.copy_(value)
    return steady.replay()


def run_loop(model, frames: dict, record=(), capture: Capture = cuda_capture) -> tuple:
    """The simulation with the steady step replayed: (logits, responses) as `model.simulate`
    returns them. Raises NotCapturable (before or at the capture) when it cannot replay."""
    like = next(iter(frames.values()))
    reason = why_not(model, like, capture)
    if reason is not None:
        raise NotCapturable(reason)
    batch, steps = like.shape[0], like.shape[1]
    blank = {name: like.new_zeros((batch,) + tuple(shape)) for name, shape in model.inputs.items()}
    states = {(a, v): None if init is None else like.new_full((batch,) + tuple(model.area_shapes[a]), init)
              for a, v, init in model.state_slots}
    rings = {source: Ring(length) for source, length in model.buffer_len.items()}
    for source, ring in rings.items():
        if source not in model.inputs and states.get(model.signals[source][:2]) is not None:
            ring.write(states[model.signals[source][:2]])
    logits = {name: like.new_zeros(batch, steps, classes) for name, classes in model.readouts.items()}
    responses = {name: [] for name in record}
    cache = model.__dict__.setdefault("_dynv_cuda_graphs", {})
    key, steady = _key(model, frames, capture), None
    if isinstance(cache.get(key), str):  # found not capturable before: say so again at once
        raise NotCapturable(cache[key])
    for t in range(model.idle + steps):
        frame = {name: x[:, t - model.idle] for name, x in frames.items()} if t >= model.idle else blank
        k = model.variant_of[t] if t < len(model.variant_of) else model.steady
        args = _arguments(model, k, frame, states, rings, (t - model.idle) * model.dt, like)
        replayed = t >= len(model.variant_of)
        if replayed:
            first = steady is None
            steady = steady or _steady_step(model, cache, key, args, capture)
            outs = _replay(model, steady, args, first)
        else:
            outs = unaliased(getattr(model, model.step_names[k])(*args), args)
            states = {(a, v): outs[i] for i, (a, v, _) in enumerate(model.state_slots)}
        _record(model, outs, t, rings, frame, logits, responses, replayed)
    return (logits if len(logits) > 1 else next(iter(logits.values()))), responses


def _record(model, outs: tuple, t: int, rings: dict, frame: dict, logits: dict, responses: dict,
            replayed: bool) -> None:
    """Write step t's signals into the rings, its logits into the logits, and its recordings
    (clones of replayed outputs, which the next replay overwrites)."""
    for source, ring in rings.items():
        ring.write(frame[source] if source in model.inputs else outs[model.signals[source][2]])
    if t < model.idle:
        return
    for name, values in responses.items():
        value = outs[model.signals[name][2]]
        values.append(value.clone() if replayed and value is not None else value)
    n = len(model.readouts)
    for i, name in enumerate(model.readouts):
        if outs[i - n] is not None:
            logits[name][:, t - model.idle].copy_(outs[i - n])


def simulate(model, x, record=(), seed: int | None = None, capture: Capture = cuda_capture,
             eager: Callable | None = None) -> tuple:
    """`model.simulate(x, record, seed)` with the steady step replayed from a CUDA graph, or,
    where it cannot be (see NotCapturable), by `eager` (default: the model's own loop) with a
    RuntimeWarning saying why. `seed` forks the RNG as the normal loop does."""
    frames = model.frames((), x) if isinstance(x, dict) else model.frames((x,))
    like = next(iter(frames.values()))
    devices = [like.device] if like.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            return run_loop(model, frames, record, capture)
        except NotCapturable as exc:
            warnings.warn(f"cuda_graphs: running the steps eagerly: {exc}", RuntimeWarning, stacklevel=3)
    run = eager or (lambda m, *a: type(m).simulate(m, *a))
    return run(model, x, record, seed)
