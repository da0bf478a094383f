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
    Code("E150", "an input is declared twice",
         "Each input is one argument of `model(...)`, by position or by name, so input names must differ.",
         "input image [3, 32, 32]\ninput image [1, 32, 32]", "input image [3, 32, 32]\ninput cue [1, 32, 32]"),
    Code("E151", "two readouts have one name",
         "With several readouts `forward` returns a dict by readout name: the `as` name of the readout's last "
         "operator, else its area. Two readouts of one area need an `as` name each.",
         "readout IT : avgpool | linear(10)\nreadout IT : avgpool | linear(2)",
         "readout IT : avgpool | linear(10) as objects\nreadout IT : avgpool | linear(2) as faces"),
    Code("E152", "a connection reads a port or the input's state",
         "`V1.a -> ...` reads state or variable `a` of area V1. A port is what V1 receives, not something it "
         "computes, and the input has no states.",
         "V1.fb -> V2 : conv(3)", "V1 -> V2 : conv(3)    # or a state: V1.a -> V2 : conv(3)"),
    Code("E153", "a connection reads a state or variable the area does not have",
         "`V1.a -> ...` needs `a` to be a state (an ODE or `state a = ...`) or a variable (assigned) of V1.",
         "V1.adapt -> V2.inh : identity   # V1 has state a", "V1.a -> V2.inh : identity"),
    Code("E154", "a trainable option that does not exist",
         "`trainable(...)` takes the named options min, max and per, each at most once; all are optional.",
         "param tau = 5 ms trainable(minimum = 1 ms)", "param tau = 5 ms trainable(min = 1 ms)"),
    Code("E155", "'per' is neither channel nor area",
         "`per = channel` gives one value per channel of the area; `per = area` (the default) one value.",
         "param tau = 5 ms trainable(per = pixel)", "param tau = 5 ms trainable(per = channel)"),
    Code("E156", "a bound of another dimension than the param",
         "min and max are compared with the param's value, so they need its dimension (a time for a time).",
         "param tau = 5 ms trainable(min = 1)", "param tau = 5 ms trainable(min = 1 ms)"),
    Code("E157", "max is not above min",
         "A bounded trainable lives strictly between min and max; min >= max leaves no room.",
         "param tau = 5 ms trainable(min = 9 ms, max = 8 ms)", "param tau = 8.5 ms trainable(min = 8 ms, max = 9 ms)"),
    Code("E158", "the initial value violates a bound",
         "The bounds are kept by a reparametrisation that reaches a bound only in the limit, so the declared "
         "value must lie strictly inside them; the error points at the bound it violates.",
         "param tau = 5 ms trainable(min = 6 ms)", "param tau = 6.5 ms trainable(min = 6 ms)"),
    # --- end inputs
)

CATALOGUE: dict[str, Code] = {entry.code: entry for entry in ENTRIES}
