"""The PassManager: runs a step graph's passes in order, times each, lints the graph after
each, can stop after a named pass (to dump the graph there) and names the pass, the step
variant and the spec line in every error (numba's compiler machinery, torch.fx's habits)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch.fx as fx

from ..diagnostics import Diagnostic, DynError
from ..diagnostics.span import Span
from ..diagnostics.suggest import unknown


@dataclass(frozen=True)
class Pass:
    """One pass: its name (as `--dump-after` takes it), the function that rewrites a graph in
    place and returns whether it changed it, and whether the printer needs it (it runs even
    with optimize=False: it resolves the lowering's markers)."""

    name: str
    fn: Callable[[fx.Graph], bool]
    required: bool = False


@dataclass(frozen=True)
class PassReport:
    """What one pass did to one step variant's graph: changed or not, its time (and the lint's
    after it), node counts."""

    name: str
    variant: str
    changed: bool
    seconds: float
    nodes_before: int
    nodes_after: int
    lint_seconds: float = 0.0


class UnknownPass(ValueError):
    """A pass name that is not in the pipeline (`--dump-after simplfy`)."""


@dataclass(frozen=True)
class PassManager:
    """The passes to run, and the pass after which to stop (None: run them all)."""

    passes: tuple[Pass, ...]
    stop_after: str | None = None

    def __post_init__(self):
        if self.stop_after is not None and self.stop_after not in self.names:
            raise UnknownPass(unknown("pass", self.stop_after, self.names) + "; the passes are " + ", ".join(self.names))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def run(self, graph: fx.Graph, variant: str = "", file: str = "<unknown>", source: str | None = None) -> list[PassReport]:
        """Run the passes on `graph` in place, up to and including `stop_after`; one report
        each. A pass that raises, breaks the graph or reports no bool raises DynError."""
        reports = []
        for i, p in enumerate(self.passes):
            shown = self.passes[i - 1].name if i else ""  # the pass after which the graph is what p got
            reports.append(_run_one(p, graph, _Where(variant, file, source, shown)))
            if p.name == self.stop_after:
                break
        return reports


@dataclass(frozen=True)
class _Where:
    """Where a pass runs, for its errors: the step variant, the spec, the pass to dump after
    to see the graph it got ("" for the first)."""

    variant: str
    file: str
    source: str | None
    dump: str

    def on(self) -> str:
        return f" (step variant {self.variant})" if self.variant else ""


def _run_one(p: Pass, graph: fx.Graph, where: _Where) -> PassReport:
    """One pass, timed, then `graph.lint()`; every failure becomes a DynError naming the pass."""
    before = len(graph.nodes)
    start = time.perf_counter()
    try:
        changed = p.fn(graph)
    except DynError:
        raise  # a pass that found an error in the spec says so itself
    except Exception as exc:  # noqa: BLE001 - any failure inside a pass is reported as the pass's
        raise _failure("E160", f"pass {p.name} failed", where, exc) from exc
    seconds = time.perf_counter() - start
    if not isinstance(changed, bool):
        raise DynError([Diagnostic("error", f"pass {p.name} returned {type(changed).__name__}, not whether it "
                                   f"changed the graph{where.on()}", Span(where.file, 0, 0, 0, 0),
                                   "a pass returns True or False", code="E162")], where.source)
    try:
        graph.lint()
    except Exception as exc:  # noqa: BLE001 - fx raises RuntimeError or ValueError
        raise _failure("E161", f"pass {p.name} left a broken graph", where, exc) from exc
    lint = time.perf_counter() - start - seconds
    return PassReport(p.name, where.variant, changed, seconds, before, len(graph.nodes), lint)


def _failure(code: str, what: str, where: _Where, exc: BaseException) -> DynError:
    """The DynError for a pass that raised or broke the graph: the pass, the variant, the first
    line of the cause, at the spec span of the node it was working on where that is known."""
    cause = str(exc).strip().split("\n")[0] or type(exc).__name__
    node = _node_at_fault(exc)
    span = node.meta.get("span") if node is not None else None
    at = f" at node '{node.name}'" if node is not None else ""
    message = f"{what}{where.on()}{at}: {type(exc).__name__}: {cause}"
    hint = "an internal error of the compiler, not of the spec" + (
        f"; `dynv compile SPEC --dump-after {where.dump}` shows the graph the pass got" if where.dump else "")
    return DynError([Diagnostic("error", message, span if isinstance(span, Span) else Span(where.file, 0, 0, 0, 0),
                                hint, code=code)], where.source)


def _node_at_fault(exc: BaseException) -> fx.Node | None:
    """The fx node the failing code was looking at: a local of the innermost frame that holds
    one (a pass's loop variable, lint's `node`), preferring nodes that carry a spec span."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    found = None
    for frame in reversed(frames):
        nodes = [v for v in frame.f_locals.values() if isinstance(v, fx.Node)]
        with_span = [n for n in nodes if isinstance(n.meta.get("span"), Span)]
        if with_span:
            return with_span[0]
        found = found or (nodes[0] if nodes else None)
    return found


def changed(reports: Sequence[PassReport]) -> dict[str, bool]:
    """Whether each pass changed the graph, by name (`StepFn.passes`)."""
    return {r.name: r.changed for r in reports}


def timing_table(reports: Sequence[PassReport]) -> str:
    """Per pass, summed over the step variants: time in ms, the lint's after it, how many
    variants it changed, and the nodes before and after it; then the totals."""
    names = list(dict.fromkeys(r.name for r in reports))
    rows = [("pass", "ms", "lint ms", "changed", "nodes before", "nodes after")]
    for name in names:
        mine = [r for r in reports if r.name == name]
        rows.append((name, _ms(mine, "seconds"), _ms(mine, "lint_seconds"), f"{sum(r.changed for r in mine)}/{len(mine)}",
                     str(sum(r.nodes_before for r in mine)), str(sum(r.nodes_after for r in mine))))
    rows.append(("total", _ms(reports, "seconds"), _ms(reports, "lint_seconds"), "", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def _ms(reports: Sequence[PassReport], field: str) -> str:
    return f"{1000 * sum(getattr(r, field) for r in reports):.3f}"
