"""Stage 6: render a Program as one standalone, readable Python module
(jinja2, strict templates; byte-identical output for identical input)."""
from __future__ import annotations

import inspect
import re

import jinja2

from . import layers
from .backend.runtime_ops import IMPURE
from .diagnostics import source_lines
from .lower_layout import channels_last_table
from .lower import TIME_INPUT, Program, frame_name, read_name, signals, state_name
from .ops_autograd import helper_sources
from .schedule import recorded
from .codenames import output_fields
from .pycode import comment_text, docstring_text, spec_line, string_literal

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("dynvision_dsl", "templates"), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
# The only ways user text enters the template (see pycode): no filter, no user text.
_ENV.filters.update(comment=comment_text, docstring=docstring_text, literal=string_literal)


_TAKEN = {"Scope", "Scale", "SelfRecurrence", "Bias", "LocalSheet", "Bounded", "fixed_weights", "sheet_maps",
          "parallel_init", "GainBound", "bound_gain", "torch", "nn",
          "F", "math", "None", "True", "False", "StepOutputs", "NamedTuple", "Optional"}

# Layers at least this large are initialised by layers.parallel_init: the random draw
# is most of AlexNet's compile time, and one generator is single-threaded.
PARALLEL_INIT_MIN = 1 << 20


def class_name(name: str) -> str:
    """A class name for the model that shadows nothing in the generated module (ASCII:
    Python would NFKC-normalise other letters, and the class would not be found by name)."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    text = text[0].upper() + text[1:] if text.strip("_") else "Model"
    if not text.isidentifier() or text[0].isdigit():
        text = f"Model_{text}"
    return f"{text}Model" if text in _TAKEN else text


def _helpers(ctors: list[str]) -> list[str]:
    """Sources of the layers.py classes and functions these constructors use (Scope always)."""
    used = {"Scope"}
    text = " ".join(ctors)
    for name, obj in inspect.getmembers(layers, lambda o: inspect.isclass(o) or inspect.isfunction(o)):
        if obj.__module__ == layers.__name__ and re.search(rf"\b{name}\(", text):
            used.add(name)
    out = []
    if "LocalSheet" in used:
        used.add("sheet_maps")
    if "bound_gain" in used:
        used.add("GainBound")
    if "LocalSheet" in used or "parallel_init" in used:
        out.insert(0, "import math")
    for name in sorted(used):
        out.append(inspect.getsource(getattr(layers, name)))
    return [s.rstrip() for s in out]


def _tables(program: Program) -> list[tuple[str, str]]:
    m, s = program.model, program.schedule
    areas = s.order
    state_slots = tuple((a, v, (m.areas[a].states[v].value if m.areas[a].states[v] is not None else None))
                        for a, v in s.state_keys)
    step_inputs = []
    reads = {read_name(r): ("read", r.source, r.delay) for r in s.reads}
    states = {state_name(a, v): ("state", a, v) for a, v in s.state_keys}
    frames = {frame_name(m, i.name): ("frame", i.name, 0) for i in m.inputs}
    for step in program.functions:
        row = []
        for name in step.inputs:
            row.append(frames.get(name) or (("time", "", 0) if name == TIME_INPUT else None) or reads.get(name)
                       or states[name])
        step_inputs.append(tuple(row))
    buffer_len = dict(s.buffer_len)
    readout_from = {r.name: recorded(s.term_present_from[r.index], m.idle) for r in m.readouts}
    return [
        ("input_name", repr(m.input.name)),
        ("input_shape", repr(tuple(m.input.shape))),
        ("inputs", repr({i.name: tuple(i.shape) for i in m.inputs})),
        ("steps", repr(m.steps)),
        ("idle", repr(m.idle)),
        ("classes", repr(m.readout.classes)),
        ("readouts", repr({r.name: r.classes for r in m.readouts})),
        ("dt", repr(m.dt)),
        ("areas", repr(tuple(areas))),
        ("area_shapes", repr({a: tuple(m.areas[a].shape) for a in areas})),
        ("outputs", repr({a: m.areas[a].output for a in areas})),
        ("signals", repr(signals(program.model, program.outputs))),
        ("state_slots", repr(state_slots)),
        ("buffer_len", repr(buffer_len)),
        ("present_from", repr({a: recorded(s.present_from[a], m.idle) for a in areas})),
        ("readout_from", repr(readout_from[m.readout.name])),
        ("readouts_from", repr(readout_from)),
        ("step_names", repr(tuple(st.name for st in program.functions))),
        ("step_inputs", _rows(step_inputs)),
        ("variant_of", repr(tuple(s.variant_of))),
        ("steady", repr(s.steady)),
        ("tail_variants", repr(tuple(program.tail))),
        ("tail_from", repr(s.steady_from())),
        ("_channels_last", channels_last_table(program)),
    ]


def _rows(rows: list[tuple]) -> str:
    """A tuple literal with one row per line."""
    return "(\n" + "".join(f"        {row!r},\n" for row in rows) + "    )"


def render(program: Program, spec_name: str | None = None) -> str:
    """The module's source text."""
    m = program.model
    spec = spec_name or m.file
    doc = f"The {m.name} model: {len(m.areas)} areas, {len(m.conns)} connections, dt = {m.dt:g} ms."
    lines = source_lines(m.source)
    modules = [_mod(md, lines, m.file) for md in program.modules]
    return _ENV.get_template("module.py.j2").render(
        name=m.name, spec=spec, class_name=class_name(m.name), doc=doc,
        helpers=_helpers([x["ctor"] for x in modules] + [ctor for _, ctor, _ in program.trainables])
        + helper_sources([st.source for st in program.functions]), tables=_tables(program), modules=modules,
        trainables=program.trainables, steps=[st.source for st in program.functions], file=m.file,
        fields=output_fields(program.outputs, len(m.readouts) > 1), constants=program.constants.lines(),
        uses_time=any(TIME_INPUT in st.inputs for st in program.functions),
        uses_noise=any(n.target in IMPURE for st in program.functions for n in st.graph.nodes),
        weights_once=any("parametrizations." in md.ctor for md in program.modules))


def _mod(md, lines: list[str], file: str):
    text = spec_line(lines, md.line)
    return {"path": md.path, "ctor": _ctor(md.ctor), "comment": f"{file}:{md.line}: {md.comment if text is None else text}"}


def _ctor(ctor: str) -> str:
    """Route a large plain Linear or Conv2d through parallel_init (sized on the meta device)."""
    match = re.fullmatch(r"nn\.(Linear|Conv2d)\((.*)\)", ctor)
    if not match:
        return ctor
    import torch
    from torch import nn

    with torch.device("meta"):
        module = eval(ctor, {"nn": nn})  # noqa: S307 - text made by ops.py, not by users
    if sum(p.numel() for p in module.parameters()) < PARALLEL_INIT_MIN:
        return ctor
    return f"parallel_init(nn.{match[1]}, {match[2]})"
