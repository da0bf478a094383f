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
from .schedule import build_schedule, recorded
from .util.source import read_spec_text, strip_bom

if TYPE_CHECKING:
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


def build(source: str | Path, params: dict | None = None, file: str | None = None,
          optimize: bool = True, strict: bool = False) -> tuple[Program, list[Diagnostic]]:
    """Run the stages up to a Program; raise DynError on any error (with `strict`, on any warning)."""
    from .lower import lower

    text, file = _read(source, file)
    module = parse(text, file)
    model, diags = check_module(module, params)
    if model is None:
        raise DynError(diags, text)
    schedule = build_schedule(model)
    if strict and diags + schedule.diagnostics:
        raise DynError(as_errors(diags + schedule.diagnostics), text)
    program = lower(model, schedule, optimize=optimize)
    program.graph = build_graph(model)
    _presence(program.graph, schedule, model)
    return program, diags + schedule.diagnostics


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
            recompute: int | None = None) -> DynModel:
    """Compile a spec (text or a Path) to a ready nn.Module; with `check_finite`, `model(x)`
    raises NonFiniteError at the first NaN or inf, as `model.run` does. `recompute=K` runs
    every K steps as one checkpointed segment when training (`model.recompute`; None: off). The spec's warnings are
    issued as `DynWarning`s (Python's `warnings`); with `strict`, a warning raises DynError."""
    from .render import class_name, render
    from .model import instantiate

    program, diags = build(source, params, file, optimize, strict)
    for d in diags:
        warnings.warn(DynWarning(d, program.model.source), stacklevel=2)
    model = instantiate(render(program), class_name(program.model.name), program, program.graph)
    model.check_finite = check_finite
    model.recompute = recompute
    return model


def compile_file(path: str | Path, params: dict | None = None, **kw) -> DynModel:
    return compile(Path(path), params, **kw)


def emit(source: str | Path, params: dict | None = None, file: str | None = None) -> str:
    """The standalone module's source for a spec."""
    from .render import render

    program, _ = build(source, params, file)
    return render(program)
