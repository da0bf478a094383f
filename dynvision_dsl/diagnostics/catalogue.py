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
    Code("E110", "a loop bound is not a whole number",
         "`for NAME in A..B` counts whole numbers: both bounds must be dimensionless whole numbers "
         "(numbers or params, evaluated before the loop is unrolled).",
         "param n = 3\nfor i in 1..n / 2 { area L{i} [8] : leaky() }",
         "param n = 3\nfor i in 1..n - 1 { area L{i} [8] : leaky() }"),
    Code("E111", "a loop runs backwards",
         "Bounds are inclusive and count up: `A..B` needs B >= A - 1 (`A..A-1` is an empty loop, so "
         "`1..(n - 1)` works for n = 1).",
         "for i in 4..1 { area L{i} [8] : leaky() }",
         "for i in 1..4 { area L{i} [8] : leaky() }"),
    Code("E112", "a loop takes too many values",
         "One loop may take at most 10000 values; a larger range is almost always a typo.",
         "for i in 1..1e6 { area L{i} [8] : leaky() }",
         "for i in 1..6 { area L{i} [8] : leaky() }"),
    Code("E113", "an interpolation is not a whole number of at least 0",
         "`{EXPR}` in a name writes a whole number into it (`L{i + 1}` -> `L3`); a fraction or a "
         "negative number would make no name.",
         "for i in 1..2 { V1 -> V{i - 2} : conv(3) }",
         "for i in 1..2 { V1 -> V{i + 1} : conv(3) }"),
    Code("E115", "an unknown name in an interpolation",
         "A name's `{EXPR}` may read the variables of the loops around it and params; any other name "
         "is a mistake (often the variable of another loop).",
         "for i in 1..2 { area L{j} [8] : leaky() }",
         "for i in 1..2 { area L{i} [8] : leaky() }"),
    Code("E116", "a loop variable has the name of a param",
         "Inside the loop the variable would hide the param; give it its own name.",
         "param k = 2\nfor k in 1..k { area L{k} [8] : leaky() }",
         "param k = 2\nfor i in 1..k { area L{i} [8] : leaky() }"),
    Code("E117", "a nested loop reuses the variable of an enclosing loop",
         "Nested loops need distinct variables, so that each `{...}` says which one it means.",
         "for i in 1..2 { for i in 1..3 { area G{i} [8] : leaky() } }",
         "for i in 1..2 { for j in 1..3 { area G{i}_{j} [8] : leaky() } }"),
    Code("E118", "the time t where a constant is needed",
         "`t` is the time of the current step in ms (0 at the first recorded step, negative while idle): "
         "equations may read it, but params, delays, shapes and conditions are fixed before the run.",
         "image -> V1 : conv(3), delay t",
         "area V1 [8] { r = input * (t >= 10 ms) }"),
    Code("E121", "a reduction over something other than channels or space",
         "`mean`, `sum` and `max` reduce over `channels` (one value per position, [1, H, W]) or `space` "
         "(one per channel, [C, 1, 1]); the result is broadcast back to the area's shape.",
         "r = input / (1 + mean(r, pixels))",
         "r = input / (1 + mean(r, channels))"),
    Code("E122", "a reduction with the wrong arguments",
         "A reduction takes the value and what to reduce over, positionally: `sum(x, space)`.",
         "r = sum(input)",
         "r = sum(input, space)"),
    Code("E123", "init= on an operator that is not fixed",
         "`init=` sets the constant weights of a fixed operator; a trainable operator starts from its "
         "usual random draw. (`scale(init=...)` is the exception: its init is the starting value.)",
         "image -> V1 : conv(3, init=1/9)",
         "image -> V1 : conv(3, fixed, init=1/9)"),
    Code("E124", "fixed or init on an operator without weights",
         "Only operators with weights (conv, depthwise, pointwise, linear, scale) can be fixed.",
         "V1 -> V2 : maxpool(3, fixed) | conv(1)",
         "V1 -> V2 : maxpool(3) | conv(1, fixed)"),
    Code("E125", "a fixed operator with weightnorm",
         "weightnorm reparametrises the weights as trainable parameters, which a fixed operator has not.",
         "image -> V1 : conv(3, fixed, weightnorm=true)",
         "image -> V1 : conv(3, fixed)"),
    Code("E126", "a solver param names no solver",
         "`solver NAME` with NAME a string param uses the param's value, which must be euler, rk4 or "
         "exponential (also after `--set`).",
         "param integrator = \"rk45\"\narea V1 [8] { solver integrator ... }",
         "param integrator = \"rk4\"\narea V1 [8] { solver integrator ... }"),
    Code("E127", "a solver param that is not a string",
         "A solver is chosen by a string param: `param integrator = \"rk4\"`.",
         "param integrator = 4\narea V1 [8] { solver integrator ... }",
         "param integrator = \"rk4\"\narea V1 [8] { solver integrator ... }"),
    # --- end generators
    # --- variables before ODEs, noise, solvers (E130-E149, W130-W139) --------
    # --- end variables
    # --- several inputs and readouts, state links, bounded params (E150-E169, W150-W159)
    # --- end inputs
)

CATALOGUE: dict[str, Code] = {entry.code: entry for entry in ENTRIES}
