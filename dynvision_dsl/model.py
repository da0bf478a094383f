"""The compiled model as users hold it: the emitted module's class plus the
conveniences of an in-process model (run with recordings, graph, code)."""
from __future__ import annotations

import linecache
import tempfile
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import torch
from torch import nn

from .errors import NonFiniteError  # noqa: F401 (re-exported: model.NonFiniteError)


@dataclass(frozen=True)
class Png:
    """A rendered PNG image; Jupyter shows it inline (`_repr_png_`)."""

    data: bytes

    def _repr_png_(self) -> bytes:
        return self.data

    def save(self, path: str | Path) -> Path:
        from .util.files import write_atomic_bytes

        return write_atomic_bytes(path, self.data, overwrite=True)


@dataclass
class RunResult:
    """logits (B, T, classes), a dict of them by name with several readouts; responses[name]
    (B, T, C, H, W) for an area or `AREA.NAME`, zeros where silent; present[name] (T,) bool;
    dt (ms per step) and idle steps for plotting."""

    logits: torch.Tensor | dict[str, torch.Tensor]
    responses: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    dt: float = 1.0
    idle: int = 0

    def plot(self, path: str | Path | None = None, areas=None, title: str | None = None):
        """Plot the run with plot.plot_responses: to the PNG file `path` (returns its Path),
        or, without a path, as an image a notebook shows inline (returns a Png)."""
        from .plot import plot_responses

        if path is not None:
            return plot_responses(self, path, self.dt, self.idle, areas, title)
        with tempfile.TemporaryDirectory() as tmp:
            return Png(plot_responses(self, Path(tmp) / "run.png", self.dt, self.idle, areas, title).read_bytes())


def non_finite_kind(values: torch.Tensor) -> str:
    """'nan' if any value is NaN, else the sign of the first infinity."""
    if torch.isnan(values).any():
        return "nan"
    return "-inf" if (values == float("-inf")).any() else "inf"


def first_non_finite(logits: torch.Tensor, responses: dict[str, torch.Tensor],
                     dt: float | None = None) -> NonFiniteError | None:
    """The first NaN/inf in time order, as an error to raise, or None if all is finite.
    Within a step the areas come in `responses`' order (the model's evaluation
    order when recorded by `run`), then the logits; the batch item is the first hit."""
    heads = list(logits.values()) if isinstance(logits, dict) else [logits]
    candidates = [(name, values) for name, values in responses.items()] + [(None, v) for v in heads]
    first = None  # (step, rank, name, bad (B, T))
    for rank, (name, values) in enumerate(candidates):
        if not values.is_floating_point() or values.numel() == 0:
            continue
        bad = ~torch.isfinite(values).flatten(2).all(2)  # (B, T)
        hit = bad.any(0).nonzero()
        if len(hit) and (first is None or (int(hit[0]), rank) < first[:2]):
            first = (int(hit[0]), rank, name, bad)
    if first is None:
        return None
    step, _, name, bad = first
    item = int(bad[:, step].nonzero()[0])
    values = candidates[first[1]][1][item, step]
    error = NonFiniteError("", name, step, item, non_finite_kind(values), None if dt is None else step * float(dt))
    error.args = (f"non-finite values ({error.kind}) in {error.where}, batch item {item}",)
    return error


def input_non_finite(x: torch.Tensor, dt: float | None = None, name: str | None = None) -> NonFiniteError | None:
    """A NaN or inf in a stimulus (B, C, H, W) or (B, T, C, H, W), as an error naming its first
    step and batch item (`area` is 'input'; `name` says which of several inputs), or None when it is finite."""
    if not x.is_floating_point() or bool(torch.isfinite(x).all()):
        return None
    timed = x.dim() == 5
    frames = x if timed else x.unsqueeze(1)  # (B, T, ...)
    bad = ~torch.isfinite(frames.flatten(2)).all(2)  # (B, T)
    step = int(bad.any(0).nonzero()[0])
    item = int(bad[:, step].nonzero()[0])
    ms = step * float(dt) if timed and dt is not None else None
    error = NonFiniteError("", "input", step if timed else None, item, non_finite_kind(frames[item, step]), ms)
    when = f" at step {step}" + (f" ({ms:g} ms)" if ms is not None else "") if timed else ""
    which = "the input" if name is None else f"input '{name}'"
    error.args = (f"non-finite values ({error.kind}) in {which}{when}, batch item {item}",)
    return error


class DynModel(nn.Module):
    """Base of every in-process compiled model; see `dynvision_dsl.compile`."""

    graph: nx.MultiDiGraph
    program = None
    # `model(x)` raises NonFiniteError at a NaN or inf in the input, an area or the logits, as
    # `model.run` does (set by `compile(..., check_finite=True)`; it records every area meanwhile)
    check_finite: bool = False
    # applied to the (first) input by `run` and `model(x)`: the normalisation training used
    # (science.data.Normalization, restored from a checkpoint by `dynv run` and `dynv experiment`)
    input_transform = None
    # how the steps run: runtime.execution.Execution (CUDA graphs, bf16), set by compile(...); None: plainly
    execution = None

    def compile_steps(self, example=None, **options) -> float | None:
        """torch.compile every step function (never the unrolled loop); with an `example` input
        they compile now and the seconds it took are returned (runtime/execution.py)."""
        from .runtime.execution import compile_steps

        return compile_steps(self, example, **options)

    @property
    def first_scored_step(self) -> int | None:
        """The first recorded step whose logits a loss or an accuracy can use: where the readout is
        present, or 0 when it is present already during idle steps (`readout_from` is then
        negative); None when it is silent for the whole run."""
        first = self.readout_from
        return None if first is None or first >= self.steps else max(0, first)

    @property
    def code(self) -> str:
        """The Python source of the step functions (one per step variant, then the tail variants)."""
        return "\n".join(step.source for step in self.program.functions)

    def picture(self, collapse: bool = False, expand=(), group=(), timeline: bool = False):
        """The connectivity drawing (or with `timeline` the first-presence view) as a
        picture object: `.save("x.svg")`, `.svg()`, shown by notebooks."""
        from .science.plot.collapse import choose, collapse as collapsed
        from .science.plot.graph import GraphPicture
        from .science.plot.timeline import TimelinePicture

        graph = collapsed(self.graph, choose(self.graph, collapse, expand, group))
        return TimelinePicture(graph) if timeline else GraphPicture(graph)

    def _repr_svg_(self) -> str:
        """Notebooks show a compiled model as its connectivity drawing."""
        return self.picture().svg()

    def run(self, x=None, record=None, check_finite: bool = True, seed: int | None = None, **named) -> RunResult:
        """Simulate and record responses (all areas when `record` is None; `V1.a` records state
        or variable `a` of V1). `x` is the input, a dict of the inputs by name, or None with
        the inputs by name (`run(image=x, cue=c)`). A NaN or inf in an input, a recorded area
        or the logits raises `NonFiniteError` naming the first (step, area) and the batch item,
        unless `check_finite` is off. `seed` makes noise() reproducible (the same seed, the
        same run); without it the samples come from torch's global random state."""
        record = list(self.areas) if record is None else list(record)
        for name in record:
            self._check_recordable(name)
        positional = () if x is None or isinstance(x, dict) else (x,)
        given = dict(x) if isinstance(x, dict) else {**dict(zip(self.inputs, positional)), **named}
        frames = self.frames((), x) if isinstance(x, dict) else self.frames(positional, named)
        if check_finite:  # on the tensors as given: a static image's NaN has no step
            for name, value in given.items():
                error = input_non_finite(value, self.dt, name if len(self.inputs) > 1 else None)
                if error is not None:
                    raise error
        logits, raw = self.simulate(self._normalised(frames), record, seed=seed)
        first = next(iter(logits.values())) if isinstance(logits, dict) else logits
        steps = first.shape[1]
        responses, present = {}, {}
        for name in record:
            shape = (first.shape[0],) + tuple(self.area_shapes[self.signals[name][0]])
            zero = first.new_zeros(shape)
            responses[name] = torch.stack([v if v is not None else zero for v in raw[name]], 1)
            present[name] = torch.tensor([v is not None for v in raw[name]], dtype=torch.bool)
        assert all(len(v) == steps for v in raw.values())
        if check_finite:
            error = first_non_finite(logits, responses, self.dt)
            if error is not None:
                raise error
        return RunResult(logits, responses, present, float(self.dt), int(self.idle))

    def _normalised(self, frames: dict) -> dict:
        """`frames` with `input_transform` applied to the first input (the image `dynv train`
        normalised; it handles one input), the others as given."""
        if self.input_transform is None:
            return frames
        first = next(iter(self.inputs))
        return {**frames, first: self.input_transform(frames[first])}

    def _check_recordable(self, name: str) -> None:
        """A KeyError with a did-you-mean for a name that is no area, state or variable."""
        if name in self.signals:
            return
        from .diagnostics import did_you_mean

        area, _, var = name.partition(".")
        if var and area in self.areas:
            own = [s.split(".", 1)[1] for s in self.signals if s.startswith(area + ".")] + [self.outputs[area]]
            guess = did_you_mean(var, own)
            raise KeyError(f"{area} has no state or variable '{var}'" + (f" (did you mean '{area}.{guess}'?)" if guess else
                           f"; it has {', '.join(own)}"))
        guess = did_you_mean(name, self.areas)
        raise KeyError(f"unknown area '{name}'" + (f" (did you mean '{guess}'?)" if guess else ""))

    def require(self, command: str, inputs: bool = True, readouts: bool = True) -> None:
        """Refuse a spec with several inputs (or readouts) for `command`, which handles one only:
        UnsupportedSpecError, a one-line message the CLI prints as it is."""
        from .errors import UnsupportedSpecError

        for several, what, table in ((inputs, "inputs", self.inputs), (readouts, "readouts", self.readouts)):
            if several and len(table) > 1:
                raise UnsupportedSpecError(f"{command} handles one {what[:-1]}, but this spec has {len(table)} "
                                           f"({', '.join(table)}); use the Python API (dynvision_dsl.compile) "
                                           f"for specs with several {what}")

    def load_dynvision(self, state_dict: dict) -> None:
        """Load a DynVision 0.1.0 state dict (aliases accepted, otherwise strict)."""
        load_dynvision(self, state_dict)

    def __reduce_ex__(self, protocol):
        raise TypeError("a compiled DynModel is not picklable; save model.state_dict() and recompile the spec, "
                        "or save the module that `dynv compile` writes")


def instantiate(source: str, class_name: str, program, graph) -> DynModel:
    """Execute the emitted module's source and return an instance of its class
    with DynModel's conveniences mixed in."""
    filename = f"<dynvision:{class_name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": f"dynvision_dsl.generated.{class_name}"}
    exec(compile(source, filename, "exec"), namespace)
    generated = namespace[class_name]

    def forward(self, *inputs, **named):
        """The generated forward; with `check_finite` on, `run`'s NaN/inf check as well."""
        if self.check_finite:
            return self.run(self.frames(inputs, named)).logits
        if self.input_transform is None:
            return generated.forward(self, *inputs, **named)
        return generated.forward(self, **self._normalised(self.frames(inputs, named)))

    def simulate(self, x, record=(), seed=None, detach_every=0, **more):
        """The generated simulate, run as `self.execution` says (runtime/execution.py)."""
        if self.execution is None:
            return generated.simulate(self, x, record, seed, detach_every, **more)
        from .runtime.execution import simulate as execute

        return execute(self, generated.simulate, x, record, seed, detach_every, **more)

    cls = type(class_name, (generated, DynModel), {"__module__": namespace["__name__"], "__doc__": generated.__doc__,
                                                   "forward": forward, "simulate": simulate})
    model = cls()
    model.program = program
    model.graph = graph
    return model


class StateDictMismatch(KeyError):
    """A checkpoint that does not fit the compiled model; the message lists why."""

    def __str__(self) -> str:
        return str(self.args[0])


def _area_tau(program, area: str) -> float | None:
    """The constant time constant of an area's first ODE, in ms (None if none or trainable)."""
    from .frontend import ir

    spec = program.model.areas.get(area)
    if spec is None:
        return None
    for ode in spec.odes:
        if isinstance(ode.coef, ir.Const):
            return ode.coef.value
    return None


def load_dynvision(model: DynModel, state_dict: dict, atol: float = 1e-3) -> None:
    """Load a DynVision 0.1.0 state dict: accept its aliases, load trainable time
    constants, check fixed ones, and be strict about everything else."""
    own = model.state_dict()
    taus: dict[str, torch.Tensor] = {}
    load: dict[str, torch.Tensor] = {}
    supralin: dict[str, float] = {}
    for key, value in state_dict.items():
        if ".source." in key or key.startswith("source.") or key == "n_residual_timesteps":
            continue  # aliases of other modules' weights, and a bookkeeping counter
        if key in ("supralin.k", "supralin.n"):
            supralin[key[-1]] = float(value)
            continue
        if key.startswith("tau_") and "." not in key:
            taus.setdefault(key[4:], value)
            continue
        if key.startswith("tstep_") and key.endswith(".tau"):
            taus.setdefault(key[len("tstep_"):-len(".tau")], value)
            continue
        load[key] = value
    problems = []
    for area, value in sorted(taus.items()):
        path = f"{area}.tau"
        if path in own:
            load[path] = value.reshape(own[path].shape)
            continue
        fixed = _area_tau(model.program, area)
        if fixed is None:
            problems.append(f"the checkpoint has a time constant for {area}, which the spec does not have")
        elif abs(float(value) - fixed) > atol * max(1.0, fixed):
            problems.append(f"the checkpoint's tau for {area} is {float(value):g} ms but the spec fixes "
                            f"{fixed:g} ms (compile with params={{'tau': '{float(value):g} ms'}})")
    if supralin:
        n = model.program.model.params.get("supralinearity")
        if n is None or abs(supralin.get("n", n) - float(n)) > 1e-6 or abs(supralin.get("k", 0.8) - 0.8) > 1e-6:
            problems.append(f"the checkpoint's supralinearity (k={supralin.get('k')}, n={supralin.get('n')}) "
                            f"does not match the spec's (k=0.8, n={n}); compile with "
                            f"params={{'supralinearity': {supralin.get('n')}}}")
    missing = sorted(set(own) - set(load))
    unexpected = sorted(set(load) - set(own))
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if problems:
        raise StateDictMismatch("cannot load the DynVision state dict into " + type(model).__name__ + ":\n  " +
                       "\n  ".join(problems))
    converted = {k: v.to(own[k].dtype) if torch.is_floating_point(v) else v for k, v in load.items()}
    model.load_state_dict(converted, strict=True)
