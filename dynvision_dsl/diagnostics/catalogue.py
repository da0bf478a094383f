"""The one catalogue of diagnostic codes: each code's title, what it means, a wrong and a
fixed example. `dynv explain CODE` prints an entry; the language reference lists them all.

Codes are stable: a code is never reused for another rule. E0xx/W0xx are the first
edition's rules, E1xx/W1xx the second edition's (LANGUAGE.md §9).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """One rule: its code (`E012`), a short title, the explanation and two examples."""

    code: str
    title: str
    explanation: str
    wrong: str = ""
    fixed: str = ""

    @property
    def severity(self) -> str:
        return "error" if self.code.startswith("E") else "warning"


ENTRIES: tuple[Code, ...] = (
    # --- first edition (E001-E099, W001-W099) --------------------------------
    # --- end first edition
    # --- generators, time, reductions, smaller gaps (E110-E129, W110-W119) ---
    # --- end generators
    # --- variables before ODEs, noise, solvers (E130-E149, W130-W139) --------
    # --- end variables
    # --- several inputs and readouts, state links, bounded params (E150-E169, W150-W159)
    # --- end inputs
)

CATALOGUE: dict[str, Code] = {entry.code: entry for entry in ENTRIES}
