"""Diagnostics are values: stages collect them and raise :class:`DynError` only at
a stage boundary, so a user sees every problem of a spec at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .span import Span, source_lines


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
        """`file:line:col: error[E012]: message`, the source line, a caret and the hint."""
        head = f"{self.span}: {self.severity}{f'[{self.code}]' if self.code else ''}: {self.message}"
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


class DynWarning(UserWarning):
    """A spec's warning surfaced through Python's `warnings` (by `dd.compile`); `.diagnostic` holds it."""

    def __init__(self, diagnostic: Diagnostic, source: str | None = None):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.format(source))


def as_errors(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics with every warning made an error (`--strict`, `strict=True`)."""
    return [Diagnostic("error", d.message, d.span, d.hint, d.code) for d in diagnostics]


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


