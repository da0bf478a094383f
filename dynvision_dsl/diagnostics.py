"""Source spans, diagnostics and the one error type every stage raises.

Diagnostics are values: stages collect them and raise :class:`DynError` only at
a stage boundary, so a user sees every problem of a spec at once.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Span:
    """A region of a source file, 1-based lines and columns (end exclusive)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line > 0 else self.file


NO_SPAN = Span("<unknown>", 0, 0, 0, 0)


@lru_cache(maxsize=4)
def source_lines(source: str) -> tuple[str, ...]:
    """The spec's lines as the parser counts them (only \\n ends a line, so a CR or
    U+2028 in a comment shifts nothing), split once per source: messages, comments
    and graph labels quote lines of a spec thousands of times (a 2000-area chain)."""
    return tuple(source.split("\n"))


@dataclass(frozen=True)
class Diagnostic:
    """One finding: an error or a warning at a span, with an optional fix hint."""

    severity: str  # "error" | "warning"
    message: str
    span: Span
    hint: str | None = None
    code: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: str | None = None) -> str:
        """`file:line:col: error: message`, the source line, a caret and the hint."""
        head = f"{self.span}: {self.severity}: {self.message}"
        lines = [head]
        if source is not None and self.span.line > 0:
            src_lines = source_lines(source)
            if self.span.line <= len(src_lines):
                text = src_lines[self.span.line - 1].rstrip("\r\n").replace("\t", " ")
                width = 1
                if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                    width = self.span.end_col - self.span.col
                text, col, width = _excerpt(text, self.span.col, width)
                lines.append(f"  {text}")
                lines.append("  " + " " * (col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


EXCERPT_WIDTH = 100  # characters of a source line shown under a message


def _excerpt(text: str, col: int, width: int) -> tuple[str, int, int]:
    """A long line cut to EXCERPT_WIDTH characters around `col` ('...' where cut), with the
    caret's column and width in the excerpt: a 30000-character line stays readable."""
    if len(text) <= EXCERPT_WIDTH:
        return text, col, width
    start = max(0, min(col - 1 - EXCERPT_WIDTH // 3, len(text) - EXCERPT_WIDTH))
    end = start + EXCERPT_WIDTH
    head, tail = ("..." if start else ""), ("..." if end < len(text) else "")
    col = col - start + len(head)
    return head + text[start:end] + tail, col, max(1, min(width, EXCERPT_WIDTH + len(head) - col + 1))


class DynError(Exception):
    """Raised at a stage boundary when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str | None = None):
        self.diagnostics = list(diagnostics)
        self.source = source
        super().__init__(self.render())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def render(self) -> str:
        return "\n".join(d.format(self.source) for d in self.diagnostics)


@dataclass
class Sink:
    """Collects diagnostics of one stage run."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, span: Span, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic("error", message, span, hint, code))

    def warning(self, message: str, span: Span, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic("warning", message, span, hint, code))

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (a swap of neighbours costs one)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def did_you_mean(name: str, candidates: Iterable[str] | dict[str, int], near_line: int = 0) -> str | None:
    """The closest candidate to `name`, or None when nothing is close.

    Ties go to the candidate declared nearest to `near_line` when `candidates`
    maps names to their declaration lines.
    """
    if isinstance(candidates, dict):
        lines = {c: (n if isinstance(n, int) else 0) for c, n in candidates.items()}
    else:
        lines = {c: 0 for c in candidates}
    best: tuple[float, int, str] | None = None
    for cand, line in lines.items():
        if cand == name:
            continue
        dist = _distance(name.lower(), cand.lower())
        limit = max(1, min(len(name), len(cand)) // 2)
        close = dist <= limit or difflib.SequenceMatcher(None, name, cand).ratio() >= 0.75
        if not close:
            continue
        key = (dist, abs(near_line - line), cand)
        if best is None or key < best:
            best = key
    return best[2] if best else None


def unknown(kind: str, name: str, candidates: Iterable[str] | dict[str, int], near_line: int = 0) -> str:
    """`unknown KIND 'NAME' (did you mean 'X'?)`."""
    guess = did_you_mean(name, candidates, near_line)
    return f"unknown {kind} '{name}'" + (f" (did you mean '{guess}'?)" if guess else "")
