"""Did-you-mean: the closest known name to a misspelt one."""
from __future__ import annotations

import difflib
from typing import Iterable


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
