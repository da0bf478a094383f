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
    Code("E130", "an assignment between two ODEs",
         "Assignments above an area's ODEs are variables the ODEs read (re-evaluated at every solver "
         "stage); assignments below them run after the step. One between two ODEs would be both.",
         "tau * da/dt = -a + input\ng = relu(a)\ntau * dr/dt = -r + g",
         "g = relu(a)\ntau * da/dt = -a + input\ntau * dr/dt = -r + g"),
    Code("E131", "a state assigned above the ODEs",
         "An assignment above the ODEs defines an algebraic variable; a state is integrated by them. "
         "Overwrite a state below the ODEs, after the step.",
         "r = relu(r)\ntau * dr/dt = -r + input",
         "tau * dr/dt = -r + input\nr = relu(r)"),
    Code("E132", "a variable the ODEs read, assigned again below them",
         "A variable above the ODEs has one meaning during the step; a second assignment below them "
         "would change it after the step under the same name.",
         "g = 1 + relu(input)\ntau * dr/dt = -r + input * g\ng = 2 * r",
         "g = 1 + relu(input)\ntau * dr/dt = -r + input * g\nh = 2 * r"),
    Code("E133", "a variable above the ODEs reads one assigned later",
         "The variables above the ODEs are evaluated in the order written, from the states and the "
         "held ports; one cannot read a variable assigned after it.",
         "g = 1 + h\ntau * dr/dt = -r + input * g\nh = relu(r)",
         "h = relu(r)\ng = 1 + h\ntau * dr/dt = -r + input * g"),
    Code("E134", "an ODE reads a variable assigned below it",
         "The ODEs are integrated before the assignments below them run, so they cannot read those. "
         "Move the assignment above the ODEs (a variable they read, re-evaluated at every stage) or "
         "declare a state to read its previous value.",
         "tau * dr/dt = -r + input * h\nh = relu(r)",
         "h = relu(r)\ntau * dr/dt = -r + input * h"),
    Code("E135", "a variable read before it is assigned",
         "Assignments run in the order written; a variable cannot be read above its assignment. "
         "Declare a state to read the previous step's value.",
         "r = relu(x)\nx = 2 * input",
         "x = 2 * input\nr = relu(x)"),
    Code("E136", "noise() with arguments",
         "noise() is a standard-normal sample and takes no arguments; scale it by a factor.",
         "tau * dr/dt = -r + input + noise(sigma)",
         "tau * dr/dt = -r + input + sigma * noise()"),
    Code("E137", "noise() where a constant is needed",
         "Params, delays, operator arguments, conditions and the time block are constants; noise() is a "
         "fresh sample at every step, so it belongs in an area's equations.",
         "param sigma = noise()",
         "param sigma = 0.3\narea V1 [4] { tau * dr/dt = -r + input + sigma * noise() }"),
    Code("E138", "noise() in a variable the ODEs read",
         "A variable above the ODEs is re-evaluated wherever the right-hand sides are; a sample in it "
         "would have no defined scale per step. Write the noise term in the ODE (white noise, "
         "Euler–Maruyama) or assign it below the ODEs (a plain sample).",
         "g = sigma * noise()\ntau * dr/dt = -r + input + g",
         "tau * dr/dt = -r + input + sigma * noise()"),
    Code("E139", "noise() in a time constant",
         "A time constant is a positive time; noise belongs in the right-hand side (reachable with "
         "a parenthesised coefficient).",
         "(tau + noise() * 1 ms) * dr/dt = -r + input",
         "tau * dr/dt = -r + input + sigma * noise()"),
    Code("E140", "noise() with the rk4 or exponential solver",
         "noise() in an ODE is white noise, integrated by Euler–Maruyama (the noise term scaled by "
         "sqrt(dt)/tau). rk4 and the exponential solver assume a smooth right-hand side held over the "
         "step, which white noise is not: use solver euler.",
         "solver rk4\ntau * dr/dt = -r + input + sigma * noise()",
         "solver euler\ntau * dr/dt = -r + input + sigma * noise()"),
    Code("E141", "noise() inside a nonlinearity in an ODE",
         "Euler–Maruyama needs the right-hand side affine in its noise terms (f + g * noise()); a "
         "function of white noise, or a product of two noisy factors, has no meaning there.",
         "tau * dr/dt = -r + input + relu(sigma * noise())",
         "tau * dr/dt = -r + input + sigma * noise()"),
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
