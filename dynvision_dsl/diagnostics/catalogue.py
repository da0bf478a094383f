"""The one catalogue of diagnostic codes: each code's title, what it means, a wrong and a
fixed example. `dynv explain CODE` prints an entry; the language reference lists them all.

Codes are stable: a code is never reused for another rule. E0xx/W0xx are the first
edition's rules, E1xx/W1xx the second edition's (LANGUAGE.md §9). An example is a spec or a
fragment that `examples.example_spec` completes: `wrong` must produce its code and `fixed`
must check clean (tests/test_diagnostics.py); a line `# with --set NAME=VALUE` checks it with
that override.
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


def _spec(top: str = "", time: str = "time { dt = 1 ms  steps = 10 }", inp: str = "input image [1, 8, 8]",
          area: str = "r = relu(input)", decl: str = "", conn: str = "image -> V1 : conv(3)",
          readout: str = "readout V1 : avgpool | linear(2)") -> str:
    """A small complete spec around one area V1, for the examples of the first edition's codes."""
    parts = (top, time, inp, decl or f"area V1 [4] {{ {area} }}", conn, readout)
    return "\n".join(p for p in parts if p) + "\n"


ENTRIES: tuple[Code, ...] = (
    # --- first edition (E001-E099, W001-W099) --------------------------------
    Code("E001", "syntax error", "The text does not follow the grammar: a token is missing or out of place. The "
         "message names what the parser expected there.",
         _spec(conn="image -> V1 conv(3)"), _spec()),
    Code("E002", "unclosed string", "A string starts with '\"' but its line ends before the closing '\"'.",
         _spec(top='param mode = "on'), _spec(top='param mode = "on"')),
    Code("E003", "misplaced or unknown unit", "A unit ('ms' or 's') follows a number, once; it cannot stand alone, "
         "and other units (sec, Hz) do not exist.",
         _spec(top="param tau = ms"), _spec(top="param tau = 5 ms")),
    Code("E004", "reserved word as a name", "Keywords (area, state, port, delay, ...) cannot name a param, area or "
         "variable.", _spec(top="param state = 2"), _spec(top="param gain = 2")),
    Code("E005", "positional argument after a keyword", "As in Python, positional arguments come before keyword "
         "arguments.", _spec(conn="image -> V1 : conv(stride=1, 3)"), _spec(conn="image -> V1 : conv(3, stride=1)")),
    Code("E006", "derivative not multiplied", "A differential equation reads 'tau * dr/dt = ...': the time "
         "constant multiplies the derivative.",
         _spec(top="param tau = 5 ms", area="tau / dr/dt = -r + input"),
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input")),
    Code("E007", "NUL character", "A spec is plain UTF-8 text; a NUL byte comes from a binary file or a UTF-16 save.",
         _spec(top="param a = 1\x00"), _spec(top="param a = 1")),
    Code("E008", "unknown escape in a string", "Strings know the escapes \\\" \\\\ \\n and \\t only.",
         _spec(top='param name = "a\\qb"'), _spec(top='param name = "a-b"')),
    Code("E009", "nested too deeply", "Expressions and 'if' blocks nest at most 100 levels, far beyond any model; "
         "split the expression into params or variables.",
         _spec(top="param a = " + "-(" * 101 + "1" + ")" * 101), _spec(top="param a = -1")),
    Code("E010", "the spec file cannot be read", "The file is missing, a directory, binary, too large or not UTF-8 "
         "text. The message names the file and what is wrong with it (no spec text shows this code)."),
    Code("E011", "not a finite float32 value", "Every value in a spec is finite, and the model computes in float32 "
         "(up to about 3.4e38): inf, nan and overflowing constants are refused.",
         _spec(top="param big = 1e400"), _spec(top="param big = 1e30")),
    Code("E012", "the wrong kind of value", "A number where a boolean is needed, a string in an equation, or "
         "'and'/'or'/'not' outside a condition.",
         _spec(top='param mode = "on"', area="r = relu(input) * mode"),
         _spec(top="param gain = 2", area="r = relu(input) * gain")),
    Code("E013", "division by zero", "A constant divisor is zero (in a param or an equation).",
         _spec(top="param a = 1 / 0"), _spec(top="param a = 1 / 2")),
    Code("E014", "no real value", "A negative number to a fractional power, or the square root of a negative number.",
         _spec(top="param a = (-8) ^ 0.5"), _spec(top="param a = 8 ^ 0.5")),
    Code("E015", "units do not match", "Both sides of +, - and comparisons need the same unit: a time and a plain "
         "number do not add.",
         _spec(top="param tau = 5 ms", area="r = relu(input) + tau"),
         _spec(top="param tau = 5 ms", area="r = relu(input) + tau / (1 ms)")),
    Code("E016", "a unit in an exponent or a power", "An exponent is dimensionless; a quantity with a unit is "
         "raised only to a whole constant power, and sqrt needs an even power of time.",
         _spec(top="param a = 2 ^ (1 ms)"), _spec(top="param a = 2 ^ 3")),
    Code("E017", "a function argument of the wrong dimension", "tanh, sigmoid, exp and log take dimensionless "
         "arguments; min, max and clamp take arguments of one dimension.",
         _spec(top="param tau = 5 ms", area="r = tanh(input * tau)"),
         _spec(top="param tau = 5 ms", area="r = tanh(input * tau / (1 ms))")),
    Code("E018", "unknown function", "The name called is no function of the language (the message suggests the "
         "closest).", _spec(area="r = rellu(input)"), _spec(area="r = relu(input)")),
    Code("E019", "a function called with the wrong arguments", "Math functions take a fixed number of positional "
         "arguments, no keywords and no 'as' name.",
         _spec(area="r = relu(input, 2)"), _spec(area="r = relu(input)")),
    Code("E020", "unknown param", "A constant expression (a delay, a condition, a time constant) reads a name "
         "that no param declares.",
         _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lagg"),
         _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lag")),
    Code("E021", "not in this variant", "The param or area is declared only under an 'if' whose condition is "
         "false for these params.",
         _spec(top='param mode = "a"\nif mode == "b" { param lag = 1 ms }',
               conn="image -> V1 : conv(3), delay lag"),
         _spec(top='param mode = "b"\nif mode == "b" { param lag = 1 ms }',
               conn="image -> V1 : conv(3), delay lag")),
    Code("E022", "a param defined in terms of itself", "Params may read other params, but not in a circle.",
         _spec(top="param a = b + 1\nparam b = a"), _spec(top="param a = 1\nparam b = a")),
    Code("E023", "defined twice", "A param, area, dynamics template, state, port or time setting has one "
         "definition.", _spec(top="param a = 1\nparam a = 2"), _spec(top="param a = 1\nparam b = 2")),
    Code("E024", "a trainable param outside an area or not a number", "'trainable' makes a learnable number; it "
         "belongs to an area's own params.",
         _spec(top="param tau = 5 ms trainable", area="tau * dr/dt = -r + input"),
         _spec(area="param tau = 5 ms trainable  tau * dr/dt = -r + input")),
    Code("E025", "an override names no param of the variant", "`--set NAME=VALUE` (or params=) must name a param "
         "the spec declares in the chosen variant.",
         "# with --set lagg=2 ms\n" + _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lag"),
         "# with --set lag=2 ms\n" + _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lag")),
    Code("E026", "an override's value does not fit", "The value given with --set cannot be read, is not finite, or "
         "is of another kind than the param's (a time needs its unit).",
         "# with --set lag=2\n" + _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lag"),
         "# with --set lag=2 ms\n" + _spec(top="param lag = 1 ms", conn="image -> V1 : conv(3), delay lag")),
    Code("E027", "model name makes a reserved Python class", "The model's class is its name with a capital "
         "first letter; it may not be a Python keyword.", _spec(top="model none"), _spec(top="model Nonlinear")),
    Code("E028", "a declaration repeated", "A spec has one model line, one time block and one input.",
         _spec(top="model A\nmodel B"), _spec(top="model A")),
    Code("E029", "a required part is missing", "A spec needs a time block (with dt and steps), an input and a "
         "readout.", _spec(readout=""), _spec()),
    Code("E030", "unknown time setting", "The time block sets dt, steps and idle only.",
         _spec(time="time { dt = 1 ms  steps = 10  idel = 2 }"),
         _spec(time="time { dt = 1 ms  steps = 10  idle = 2 }")),
    Code("E031", "not a whole number", "Counts and sizes (steps, idle, channels, shapes) are whole numbers, at "
         "least 1 (idle: at least 0).",
         _spec(time="time { dt = 1 ms  steps = 10.5 }"), _spec(time="time { dt = 1 ms  steps = 10 }")),
    Code("E032", "a time is needed", "dt, delays and the time constant of an ODE are times: write the unit "
         "('1 ms'). A param defined by a bare number is reported at its definition.",
         _spec(time="time { dt = 1  steps = 10 }"), _spec(time="time { dt = 1 ms  steps = 10 }")),
    Code("E033", "must be positive", "dt and time constants are positive; delays are not negative.",
         _spec(conn="image -> V1 : conv(3), delay -1 ms"), _spec(conn="image -> V1 : conv(3), delay 1 ms")),
    Code("E034", "beyond the limits of a run", "A run has at most 1000000 steps, and a delay buffer at most "
         "1000000 steps of dt.",
         _spec(time="time { dt = 1 ms  steps = 2000000 }"), _spec(time="time { dt = 1 ms  steps = 10 }")),
    Code("E035", "the model does not fit in memory", "Its weights, delay buffers or one step's tensors need more "
         "memory than this machine has; the message names the largest part.",
         _spec(inp="input image [1, 200000, 200000]"), _spec()),
    Code("E036", "a delay that is no multiple of dt", "Delays are whole numbers of steps.",
         _spec(time="time { dt = 2 ms  steps = 10 }", conn="image -> V1 : conv(3), delay 3 ms"),
         _spec(time="time { dt = 2 ms  steps = 10 }", conn="image -> V1 : conv(3), delay 4 ms")),
    Code("E037", "a shape with the wrong number of entries", "The input is [channels, height, width]; an area is "
         "[channels] or [channels, height, width].",
         _spec(inp="input image [1, 8]"), _spec()),
    Code("E038", "an area named like the input", "The input and the areas need distinct names.",
         _spec(inp="input V1 [1, 8, 8]", conn="V1 -> V1 : conv(3)"), _spec()),
    Code("E039", "unknown dynamics template", "The template an area instantiates is not declared.",
         _spec(top="param tau = 5 ms\ndynamics leaky(tau) { tau * dr/dt = -r + input }",
               decl="area V1 [4] : leakyy(tau=tau)"),
         _spec(top="param tau = 5 ms\ndynamics leaky(tau) { tau * dr/dt = -r + input }",
               decl="area V1 [4] : leaky(tau=tau)")),
    Code("E040", "the wrong arguments for an operator or template", "A required argument is missing, one is "
         "unknown or given twice, or there are too many.",
         _spec(conn="image -> V1 : conv()"), _spec(conn="image -> V1 : conv(3)")),
    Code("E041", "an argument of the wrong kind", "An operator's argument must be of its kind: a whole number, a "
         "number, true/false or one of its choices.",
         _spec(conn="image -> V1 : conv(3, stride=1.5)"), _spec(conn="image -> V1 : conv(3, stride=1)")),
    Code("E042", "a state's initial value is no plain number", "'state a = VALUE' starts the state at a "
         "dimensionless number.",
         _spec(area="state a = 1 ms  r = relu(input) + a"), _spec(area="state a = 1  r = relu(input) + a")),
    Code("E043", "two differential equations for one state", "Each state has one ODE.",
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input  tau * dr/dt = -r"),
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input")),
    Code("E044", "an ODE's right side of the wrong dimension", "With a time constant the right side is "
         "dimensionless; without one it is a rate (1/time).",
         _spec(area="dr/dt = -r + input"),
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input")),
    Code("E045", "assignment to a param", "Params are constants; a variable needs its own name.",
         _spec(top="param gain = 2", area="gain = 3  r = relu(input) * gain"),
         _spec(top="param gain = 2", area="g = 3  r = relu(input) * g * gain")),
    Code("E046", "a variable with a unit", "Variables and states are dimensionless.",
         _spec(top="param tau = 5 ms", area="r = relu(input) * tau"),
         _spec(top="param tau = 5 ms", area="r = relu(input) * tau / (1 ms)")),
    Code("E047", "unknown solver", "The solvers are euler, rk4 and exponential.",
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input  solver eulr"),
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input  solver euler")),
    Code("E048", "the exponential solver on a nonlinear ODE", "'solver exponential' integrates dr/dt = a*r + b "
         "exactly; it needs the right side linear in the state.",
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r * r + input  solver exponential"),
         _spec(top="param tau = 5 ms", area="tau * dr/dt = -r + input  solver exponential")),
    Code("E050", "no output", "An area's output is 'r' unless 'output NAME' names another variable or state.",
         _spec(area="x = relu(input)"), _spec(area="x = relu(input)  output x")),
    Code("E051", "groupnorm groups that do not divide the channels", "groupnorm(x, g) needs g to divide the "
         "area's channels.", _spec(area="r = groupnorm(relu(input), 3)"), _spec(area="r = groupnorm(relu(input), 2)")),
    Code("E052", "unknown name in an equation", "An equation reads a name that is no param, template argument, "
         "state, variable or port fed into this area. A typo would silently delete a term, so it is an error; "
         "declare an optional input with 'port NAME' (silent while unfed).",
         _spec(top="param w_a = 0.5", area="r = relu(input) - w_aa * input"),
         _spec(top="param w_a = 0.5", area="r = relu(input) - w_a * input")),
    Code("E053", "a port named like another name of the area", "'port NAME' declares an optional input; a state, "
         "variable or param of the area may not have its name.",
         _spec(area="port r  r = relu(input)"), _spec(area="port fb  r = relu(input + fb)")),
    Code("E054", "unknown area", "A connection or the readout names an area that is not declared.",
         _spec(conn="image -> V2 : conv(3)"), _spec()),
    Code("E055", "a connection into the input", "The input is a source only; connections run from it to areas.",
         _spec(conn="image -> V1 : conv(3)\nV1 -> image : conv(3)"), _spec()),
    Code("E057", "unknown operator", "The operator of a pipeline is not one of the language's (conv, pointwise, "
         "maxpool, ...).", _spec(conn="image -> V1 : conv2d(3)"), _spec()),
    Code("E058", "an operator that cannot apply", "An operator's argument is out of range, or the shape reaching "
         "it is one it cannot take.",
         _spec(conn="image -> V1 : dropout(1.5) | conv(3)"), _spec(conn="image -> V1 : dropout(0.5) | conv(3)")),
    Code("E059", "shapes that do not match", "A connection delivers other channels or another size than the area "
         "(or port) has; end the pipeline with conv, pointwise, adapt or resize.",
         _spec(conn="image -> V1 : maxpool(2)"), _spec(conn="image -> V1 : maxpool(2) | conv(3)")),
    Code("E060", "the size of an area cannot be inferred", "An area without [channels, height, width] takes its "
         "size from a connection into it that does not resize.",
         _spec(top="area V2 [4] { port fb  r = relu(fb) }"),
         _spec(top="area V2 [4] { port fb  r = relu(fb) }", conn="image -> V1 : conv(3)\nimage -> V2.fb : conv(3)")),
    Code("E061", "a readout that ends in a map", "The readout ends in a vector of class scores: 'avgpool | "
         "linear(n)' or 'flatten | linear(n)'.",
         _spec(readout="readout V1 : maxpool(2)"), _spec()),
    Code("E062", "a port fed but never read", "A connection feeds a port that no equation of the area reads: "
         "probably a misspelt port, which would silently drop the connection.",
         _spec(conn="image -> V1 : conv(3)\nV1 -> V1.fb : conv(3), delay 1 ms"),
         _spec(area="r = relu(input + fb)", conn="image -> V1 : conv(3)\nV1 -> V1.fb : conv(3), delay 1 ms")),
    Code("E063", "a cycle without delay", "Every loop of connections needs a delay of at least dt somewhere.",
         _spec(area="r = relu(input + fb)", conn="image -> V1 : conv(3)\nV1 -> V1.fb : conv(3)"),
         _spec(area="r = relu(input + fb)", conn="image -> V1 : conv(3)\nV1 -> V1.fb : conv(3), delay 1 ms")),
    Code("E064", "a module name that is taken", "Operator and function modules are named after their area or "
         "their 'as' name; a name may not be reused, reserved by the generated module, or the start of another.",
         _spec(conn="image -> V1 : conv(3) as steps"), _spec(conn="image -> V1 : conv(3) as stem")),
    Code("W001", "an area no path reaches", "No connection path from the input reaches the area, and it has no "
         "initial state or bias: it stays silent.",
         _spec(top="area V2 [4, 8, 8] { port fb  r = relu(fb) }",
               conn="image -> V1 : conv(3)\nV2 -> V2.fb : conv(3), delay 1 ms"),
         _spec(top="area V2 [4, 8, 8] { port fb  r = relu(fb) }",
               conn="image -> V1 : conv(3)\nimage -> V2.fb : conv(3)")),
    Code("W002", "an area silent for the whole run", "The delays on every path into the area are longer than "
         "the run: it never receives a signal.",
         _spec(top="area V2 [4] { r = relu(input) }", conn="image -> V1 : conv(3)\nimage -> V2 : conv(3), delay 20 ms"),
         _spec(top="area V2 [4] { r = relu(input) }", conn="image -> V1 : conv(3)\nimage -> V2 : conv(3), delay 2 ms")),
    Code("W003", "a readout silent for the whole run", "The signal reaches the readout only after the last step: "
         "its logits are all zero.",
         _spec(readout="readout V1 : avgpool | linear(2), delay 20 ms"),
         _spec(readout="readout V1 : avgpool | linear(2), delay 2 ms")),
    # --- end first edition
    # --- generators, time, reductions, smaller gaps (E110-E129, W110-W119) ---
    Code("E110", "a loop bound is not a whole number",
         "`for NAME in A..B` counts whole numbers: both bounds must be dimensionless whole numbers "
         "(numbers or params, evaluated before the loop is unrolled).",
         "param n = 3\nfor i in 1..n / 2 { area L{i} [8] : leaky() }",
         'param n = 3\nfor i in 1..n - 1 {\n  area L{i} [8] : leaky()\n  image -> L{i} : conv(3)\n}\nreadout L1 : avgpool | linear(2)'),
    Code("E111", "a loop runs backwards",
         "Bounds are inclusive and count up: `A..B` needs B >= A - 1 (`A..A-1` is an empty loop, so "
         "`1..(n - 1)` works for n = 1).",
         "for i in 4..1 { area L{i} [8] : leaky() }",
         'for i in 1..4 {\n  area L{i} [8] : leaky()\n  image -> L{i} : conv(3)\n}\nreadout L1 : avgpool | linear(2)'),
    Code("E112", "a loop takes too many values",
         "One loop may take at most 10000 values; a larger range is almost always a typo.",
         "for i in 1..1e6 { area L{i} [8] : leaky() }",
         'for i in 1..6 {\n  area L{i} [8] : leaky()\n  image -> L{i} : conv(3)\n}\nreadout L1 : avgpool | linear(2)'),
    Code("E113", "an interpolation is not a whole number of at least 0",
         "`{EXPR}` in a name writes a whole number into it (`L{i + 1}` -> `L3`); a fraction or a "
         "negative number would make no name.",
         'area V1 [8] : leaky()\nfor i in 1..2 { V1 -> V{i - 2} : conv(3) }',
         'area V1 [8] : leaky()\nfor i in 1..2 {\n  area V{i + 1} [8] : leaky()\n  V1 -> V{i + 1} : conv(3)\n}\nreadout V2 : avgpool | linear(2)'),
    Code("E115", "an unknown name in an interpolation",
         "A name's `{EXPR}` may read the variables of the loops around it and params; any other name "
         "is a mistake (often the variable of another loop).",
         "for i in 1..2 { area L{j} [8] : leaky() }",
         'for i in 1..2 {\n  area L{i} [8] : leaky()\n  image -> L{i} : conv(3)\n}\nreadout L1 : avgpool | linear(2)'),
    Code("E116", "a loop variable has the name of a param",
         "Inside the loop the variable would hide the param; give it its own name.",
         "param k = 2\nfor k in 1..k { area L{k} [8] : leaky() }",
         'param k = 2\nfor i in 1..k {\n  area L{i} [8] : leaky()\n  image -> L{i} : conv(3)\n}\nreadout L1 : avgpool | linear(2)'),
    Code("E117", "a nested loop reuses the variable of an enclosing loop",
         "Nested loops need distinct variables, so that each `{...}` says which one it means.",
         "for i in 1..2 { for i in 1..3 { area G{i} [8] : leaky() } }",
         'for i in 1..2 {\n  for j in 1..3 {\n    area G{i}_{j} [8] : leaky()\n    image -> G{i}_{j} : conv(3)\n  }\n}\nreadout G1_1 : avgpool | linear(2)'),
    Code("E118", "the time t where a constant is needed",
         "`t` is the time of the current step in ms (0 at the first recorded step, negative while idle): "
         "equations may read it, but params, delays, shapes and conditions are fixed before the run.",
         "image -> V1 : conv(3), delay t",
         "area V1 [8] { r = input * (t >= 10 ms) }"),
    Code("E121", "a reduction over something other than channels or space",
         "`mean`, `sum` and `max` reduce over `channels` (one value per position, [1, H, W]) or `space` "
         "(one per channel, [C, 1, 1]); the result is broadcast back to the area's shape.",
         'tau * dr/dt = -r + input / (1 + mean(r, pixels))',
         'tau * dr/dt = -r + input / (1 + mean(r, channels))'),
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
         'area V2 [4] { r = relu(input) }\nV1 -> V2 : maxpool(3, fixed) | conv(1)',
         'area V2 [4] { r = relu(input) }\nV1 -> V2 : maxpool(3) | conv(1, fixed)'),
    Code("E125", "a fixed operator with weightnorm",
         "weightnorm reparametrises the weights as trainable parameters, which a fixed operator has not.",
         "image -> V1 : conv(3, fixed, weightnorm=true)",
         "image -> V1 : conv(3, fixed)"),
    Code("E126", "a solver param names no solver",
         "`solver NAME` with NAME a string param uses the param's value, which must be euler, rk4 or "
         "exponential (also after `--set`).",
         'param integrator = "rk45"\narea V1 [8] { solver integrator  tau * dr/dt = -r + input }',
         'param integrator = "rk4"\narea V1 [8] { solver integrator  tau * dr/dt = -r + input }'),
    Code("E127", "a solver param that is not a string",
         "A solver is chosen by a string param: `param integrator = \"rk4\"`.",
         'param integrator = 4\narea V1 [8] { solver integrator  tau * dr/dt = -r + input }',
         'param integrator = "rk4"\narea V1 [8] { solver integrator  tau * dr/dt = -r + input }'),
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
         'h = 1 + relu(r)\ntau * dr/dt = -r + input * h'),
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
         'area V1 [4] { port fb  r = relu(input + fb) }\nV1.fb -> V2 : conv(3)', 'area V1 [4] { port fb  r = relu(input + fb) }\nV1 -> V2 : conv(3)'),
    Code("E153", "a connection reads a state or variable the area does not have",
         "`V1.a -> ...` needs `a` to be a state (an ODE or `state a = ...`) or a variable (assigned) of V1.",
         'area V1 [4] { state a = 0  tau * da/dt = -a + input  r = relu(a) }\nV1.adapt -> V2.inh : identity', 'area V1 [4] { state a = 0  tau * da/dt = -a + input  r = relu(a) }\nV1.a -> V2.inh : identity'),
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
    # --- backend passes (E160-E169) ---
    Code("E160", "a compiler pass failed",
         "A pass over a step's graph (backend/passes/) raised an exception: an internal error of the compiler, "
         "not of the spec. The message names the pass, the step variant and, where known, the spec line whose "
         "code the pass was rewriting; `dynv compile SPEC --dump-after PASS` prints the graph the pass got."),
    Code("E161", "a compiler pass left a broken graph",
         "After each pass the graph is linted (every argument defined before use, every node in the graph); "
         "this pass left one that is not. An internal error of the compiler, reported with the pass and the "
         "step variant."),
    Code("E162", "a compiler pass did not say whether it changed the graph",
         "Every pass returns True or False (whether it rewrote the graph), which `--time-passes` reports; this "
         "one returned something else. An internal error of the compiler."),
    # --- end backend passes
)

CATALOGUE: dict[str, Code] = {entry.code: entry for entry in ENTRIES}



TABLE_BEGIN = "<!-- diagnostic codes: generated from dynvision_dsl/diagnostics/catalogue.py -->"
TABLE_END = "<!-- end of diagnostic codes -->"


def table() -> str:
    """Every code as a Markdown table, for the language reference (kept in sync by a test)."""
    rows = [f"| `{c.code}` | {c.severity} | {c.title} |" for c in sorted(ENTRIES, key=lambda c: (c.code[0], c.code))]
    return "\n".join([TABLE_BEGIN, "| code | severity | meaning |", "|---|---|---|", *rows, TABLE_END])


def update_reference(text: str) -> str:
    """`text` (docs/LANGUAGE.md) with its table of codes replaced by the catalogue's."""
    start, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END)
    return text[:start] + table() + text[end:]

