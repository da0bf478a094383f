"""The pipeline in one place: parse -> check -> graph -> schedule -> lower -> emit.

The back end (lower, emit, model: torch) loads when first needed, so `check` runs without torch."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .frontend.check import check_module
from .diagnostics import Diagnostic, DynError, DynWarning, as_errors
from .graph import build_graph, readout_node
from .frontend.parse import parse
from .middle.schedule import build_schedule, recorded
from .util.source import read_spec_text, strip_bom

if TYPE_CHECKING:
    from .backend.passmanager import PassReport
    from .lower import Program
    from .model import DynModel


def _read(source: str | Path, file: str | None) -> tuple[str, str]:
    """The spec's text and file name; a file that cannot be read as a spec raises DynError."""
    if isinstance(source, Path):
        return read_spec_text(source), file or str(source)
    return strip_bom(source), file or "<string>"


def check(source: str | Path, params: dict | None = None, file: str | None = None) -> list[Diagnostic]:
    """Every diagnostic of a spec, errors and warnings, in source order."""
    try:
        text, file = _read(source, file)
        module = parse(text, file)
    except DynError as exc:
        return exc.diagnostics
    model, diags = check_module(module, params)
    if model is not None:
        diags = diags + build_schedule(model).diagnostics
    return sorted(diags, key=lambda d: (d.span.file != file, d.span.line, d.span.col))


def _scheduled(source: str | Path, params: dict | None, file: str | None):
    """(text, model, schedule, check diagnostics) of a spec: the stages before lowering; any
    error raises DynError."""
    text, file = _read(source, file)
    model, diags = check_module(parse(text, file), params)
    if model is None:
        raise DynError(diags, text)
    return text, model, build_schedule(model), diags


def build(source: str | Path, params: dict | None = None, file: str | None = None,
          optimize: bool = True, strict: bool = False) -> tuple[Program, list[Diagnostic]]:
    """Run the stages up to a Program; raise DynError on any error (with `strict`, on any warning)."""
    from .lower import lower

    text, model, schedule, diags = _scheduled(source, params, file)
    if strict and diags + schedule.diagnostics:
        raise DynError(as_errors(diags + schedule.diagnostics), text)
    program = lower(model, schedule, optimize=optimize)
    program.graph = build_graph(model)
    _presence(program.graph, schedule, model)
    return program, diags + schedule.diagnostics


def pass_reports(program: Program) -> list[PassReport]:
    """Every pass's report (changed, seconds, node counts) for every step variant of a build."""
    return [r for step in program.steps for r in step.reports]


def dump_after(source: str | Path, pass_name: str, params: dict | None = None,
               file: str | None = None, optimize: bool = True) -> list[tuple[str, object, list[PassReport]]]:
    """(step name, fx graph, reports) of every step variant, the graph as it is after `pass_name`
    and the passes before it (`dynv compile --dump-after`); the spec's warnings are issued as
    DynWarnings, as `compile` does. An unknown name raises UnknownPass."""
    from .backend.passes import pipeline
    from .backend.passmanager import PassManager
    from .lower import conv_modules, step_graph

    manager = PassManager(pipeline(optimize), stop_after=pass_name)  # a bad name fails before any work
    _, model, schedule, diags = _scheduled(source, params, file)
    for d in diags + schedule.diagnostics:
        warnings.warn(DynWarning(d, model.source), stacklevel=2)
    convs = conv_modules(model)
    return [(f"_step_{k}", *step_graph(model, schedule, k, manager, convs)) for k in range(len(schedule.variants))]


def _presence(graph, schedule, model) -> None:
    """First present step of every node and connection, counted from step 0 after idle."""
    def rel(step):
        return recorded(step, model.idle)
    for area, step in schedule.present_from.items():
        graph.nodes[area]["present_from"] = rel(step)
    for inp in model.inputs:
        graph.nodes[inp.name]["present_from"] = -model.idle
    for *_, d in graph.edges(keys=True, data=True):
        d["present_from"] = rel(schedule.term_present_from.get(d["index"]))
    for r in model.readouts:
        graph.nodes[readout_node(model, r)]["present_from"] = rel(schedule.term_present_from[r.index])


def compile(source: str | Path, params: dict | None = None, file: str | None = None,
            optimize: bool = True, check_finite: bool = False, strict: bool = False,
            cuda_graphs: bool = False, precision: str = "32", compile_steps: bool = False,
            recompute: int | str | None = None) -> DynModel:
    """Compile a spec (text or a Path) to a ready nn.Module; with `check_finite`, `model(x)`
    raises NonFiniteError at the first NaN or inf, as `model.run` does. The spec's warnings are
    issued as `DynWarning`s (Python's `warnings`); with `strict`, a warning raises DynError.
    `cuda_graphs`, `precision` ('32', 'bf16') and `compile_steps` say how the steps run
    (runtime/execution.py: CUDA-graph replay, bf16 autocast with fp32 states, torch.compile).
    `recompute=K` runs every K steps as one checkpointed segment when training, "auto" runs
    segments balanced for the lowest peak memory (`model.recompute`; None: off)."""
    from .render import class_name, render
    from .model import instantiate

    program, diags = build(source, params, file, optimize, strict)
    for d in diags:
        warnings.warn(DynWarning(d, program.model.source), stacklevel=2)
    model = instantiate(render(program), class_name(program.model.name), program, program.graph)
    model.check_finite = check_finite
    model.recompute = recompute
    _execution(model, cuda_graphs, precision, compile_steps)
    return model


def _execution(model: DynModel, cuda_graphs: bool, precision: str, compile_steps: bool) -> None:
    """Set how the model runs its steps (nothing for the defaults)."""
    if cuda_graphs or precision != "32":
        from .runtime.execution import Execution

        model.execution = Execution(cuda_graphs=cuda_graphs, precision=str(precision))
    if compile_steps:
        model.compile_steps()


def compile_file(path: str | Path, params: dict | None = None, **kw) -> DynModel:
    return compile(Path(path), params, **kw)


def emit(source: str | Path, params: dict | None = None, file: str | None = None) -> str:
    """The standalone module's source for a spec."""
    from .render import render

    program, _ = build(source, params, file)
    return render(program)
