"""The pipeline in one place: parse -> check -> graph -> schedule -> lower -> emit."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .check import check_module
from .diagnostics import Diagnostic, DynError, Span
from .emit import class_name, render
from .graph import build_graph
from .lower import Program, lower
from .model import DynModel, instantiate
from .parse import parse
from .schedule import build_schedule


def _read(source: str | Path, file: str | None) -> tuple[str, str]:
    if isinstance(source, Path):
        return source.read_text(), file or str(source)
    return source, file or "<string>"


def check(source: str | Path, params: dict | None = None, file: str | None = None) -> list[Diagnostic]:
    """Every diagnostic of a spec, errors and warnings, in source order."""
    text, file = _read(source, file)
    try:
        module = parse(text, file)
    except DynError as exc:
        return exc.diagnostics
    model, diags = check_module(module, params)
    if model is not None:
        diags = diags + build_schedule(model).diagnostics
    return sorted(diags, key=lambda d: (d.span.file != file, d.span.line, d.span.col))


def build(source: str | Path, params: dict | None = None, file: str | None = None,
          optimize: bool = True) -> tuple[Program, list[Diagnostic]]:
    """Run the stages up to a Program; raise DynError on any error."""
    text, file = _read(source, file)
    module = parse(text, file)
    model, diags = check_module(module, params)
    if model is None:
        raise DynError(diags, text)
    schedule = build_schedule(model)
    program = lower(model, schedule, optimize=optimize)
    program.graph = build_graph(model)
    for area, step in schedule.present_from.items():  # first present step, counted from step 0 after idle
        program.graph.nodes[area]["present_from"] = None if step is None else step - model.idle
    return program, diags + schedule.diagnostics


def compile(source: str | Path, params: dict | None = None, file: str | None = None,
            optimize: bool = True, check_finite: bool = False) -> DynModel:
    """Compile a spec (text or a Path) to a ready nn.Module; with `check_finite`, `model(x)`
    raises NonFiniteError at the first NaN or inf, as `model.run` does."""
    program, _ = build(source, params, file, optimize)
    model = instantiate(render(program), class_name(program.model.name), program, program.graph)
    model.check_finite = check_finite
    return model


def compile_file(path: str | Path, params: dict | None = None, **kw) -> DynModel:
    return compile(Path(path), params, **kw)


def emit(source: str | Path, params: dict | None = None, file: str | None = None) -> str:
    """The standalone module's source for a spec."""
    program, _ = build(source, params, file)
    return render(program)
