"""Resource bounds, checked with the model before anything is built: how long a run may be, and
whether its delay buffers and one forward step fit in this machine's memory (float32, per batch
item), so that a spec which cannot run is refused by `dynv check`, not by torch hours later."""
from __future__ import annotations

import math
import os
import re

from .frontend import ir
from .diagnostics import Diagnostic, Sink, Span, source_lines
from .ops import OPERATORS

MAX_STEPS = 1_000_000  # idle + steps: the run loops over steps in Python, one call per step
MAX_DELAY_STEPS = 1_000_000  # a buffer keeps one tensor per step of delay
FLOAT_BYTES = 4  # the model computes in float32


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n: float) -> str:
    """Bytes as '3.2 TB' (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def resource_diagnostics(model: ir.Model, memory: int | None = None) -> list[Diagnostic]:
    """Errors for a model whose delay buffers or one forward step cannot fit in `memory` bytes
    (default: this machine's RAM); empty when it fits or the RAM is unknown."""
    memory = physical_memory() if memory is None else memory
    if memory is None:
        return []
    sink = Sink()
    buffers = buffer_bytes(model)
    in_buffers = sum(b for _, b in buffers)
    weights = weight_bytes(model)
    total = in_buffers + step_bytes(model) + sum(b for _, b in weights)
    one_step_delays = total - in_buffers + sum(b // c.delay_steps for c, b in buffers)
    where = f"; this machine has {size_text(memory)}"
    if total <= memory:
        return []
    heaviest, most = max(weights, key=lambda cb: cb[1], default=(None, 0))
    if most > memory / 2:  # one connection's weights take most of it
        sink.error(f"the weights of {_label(heaviest)} need about {size_text(most)}{where}", heaviest.span,
                   "use fewer channels, a smaller kernel or a smaller linear there (a conv holds "
                   "in x out x k x k weights, a linear in x out)", code="E035")
    elif one_step_delays <= memory / 2:  # the delays are to blame: the areas would fit with short ones
        conn, most = max(buffers, key=lambda cb: cb[1])
        sink.error(f"the delay buffers need about {size_text(in_buffers)} per batch item{where} (this delay "
                   f"keeps {_shape_text(model, conn.source)} for {conn.delay_steps} steps: {size_text(most)})",
                   conn.span, _delay_hint(model, conn, memory, in_buffers - most), code="E035")
    else:
        area = max(model.areas.values(), key=lambda a: _numel(a.shape))
        sink.error(f"one step of {model.name} needs about {size_text(total)} per batch item (states, area "
                   f"outputs, delay buffers and weights in float32){where}; the largest area is {area.name} "
                   f"[{', '.join(map(str, area.shape))}]", area.span, _area_hint(model, area, total / memory), code="E035")
    return sink.items


def buffer_bytes(model: ir.Model) -> list[tuple[ir.Conn | ir.ReadoutSpec, int]]:
    """The bytes of each source's delay buffer, beside the read that sets its length."""
    longest: dict[str, object] = {}
    for c in [*model.conns, *model.readouts]:
        if c.delay_steps > 0 and (c.signal not in longest or c.delay_steps > longest[c.signal].delay_steps):
            longest[c.signal] = c
    return [(c, c.delay_steps * _numel(_shape(model, c.source)) * FLOAT_BYTES) for c in longest.values()]


def weight_bytes(model: ir.Model) -> list[tuple[ir.Conn | ir.ReadoutSpec, int]]:
    """The bytes of each connection's (and the readout's) weights, as the operator table estimates them."""
    out = []
    for c in [*model.conns, *model.readouts]:
        n = sum(OPERATORS[o.kind].weights(o.a, o.in_shape, o.out_shape) for o in c.ops if o.out_shape)
        out.append((c, n * FLOAT_BYTES))
    return out


def _label(c) -> str:
    return f"'{c.label}'" if isinstance(c, ir.Conn) else "the readout"


def step_bytes(model: ir.Model) -> int:
    """One step's states, variables, area outputs and connection results, and the logits of every step."""
    numel = 0
    for a in model.areas.values():
        names = set(a.states) | {s.var for s in (*a.before_odes, *a.assigns)} | {a.output}
        numel += len(names) * _numel(a.shape)
    for c in model.conns:
        numel += sum(_numel(o.out_shape) for o in c.ops if o.out_shape)
    numel += (model.idle + model.steps) * sum(r.classes for r in model.readouts)
    return numel * FLOAT_BYTES


def _shape(model: ir.Model, name: str) -> tuple[int, ...]:
    inp = model.input_named(name)
    return inp.shape if inp is not None else model.areas[name].shape


def _numel(shape) -> int:
    return math.prod(shape) if shape else 0


def _shape_text(model: ir.Model, name: str) -> str:
    return f"{name} [{', '.join(map(str, _shape(model, name)))}]"


def _delay_hint(model: ir.Model, conn, memory: int, others: int) -> str:
    """A delay that would fit in half the memory, as a `--set` of its param when it has one."""
    per_step = _numel(_shape(model, conn.source)) * FLOAT_BYTES
    fit = max(1, int((memory / 2 - others) // per_step))
    word = re.search(r"\bdelay\s+([A-Za-z_]\w*)\s*$", getattr(conn, "text", "") or "")
    if word and word[1] in model.params:
        return f"shorten it, e.g. --set {word[1]}={_round_down(fit * model.dt)} ms"
    return f"shorten the delay to at most about {_round_down(fit * model.dt)} ms ({fit} steps)"


def _area_hint(model: ir.Model, area: ir.Area, factor: float) -> str:
    """A `--set` of the param that sizes `area` (read off its declaration and the input's) if there is one."""
    text = " ".join(_line(model.source, s) for s in (area.span, model.input.span))
    counts: dict[str, int] = {}
    for bracket in re.findall(r"\[([^\]]*)\]", text):
        for word in re.findall(r"[A-Za-z_]\w*", bracket):
            if isinstance(model.params.get(word), (int, float)) and not isinstance(model.params[word], bool):
                counts[word] = counts.get(word, 0) + 1
    if not counts:
        return f"make it about {math.ceil(factor)} times smaller (fewer channels or a smaller size)"
    name = max(counts, key=lambda w: model.params[w])
    power = 2 if counts[name] > 1 else 1  # a size sets height and width
    value = max(1, int(model.params[name] / (2 * factor) ** (1 / power)))
    return f"lower it with --set {name}={_round_down(value)}"


def _line(source: str, span: Span) -> str:
    lines = source_lines(source)  # counted as the parser counts them
    return lines[span.line - 1] if 0 < span.line <= len(lines) else ""


def _round_down(x: float) -> str:
    """`x` rounded down to two significant digits, as a plain number."""
    if x < 1:
        return f"{x:.2g}"
    digits = 10 ** max(0, int(math.log10(x)) - 1)
    return str(int(x // digits * digits))
