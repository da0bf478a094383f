"""Source spans: where in a `.dyn` file a finding is, and the file's lines as the parser counts them."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


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


