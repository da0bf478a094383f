"""The catalogue's examples as specs to check. An example with a time block is a complete spec;
any other is a fragment: the body of an area (`tau * dr/dt = -r + input`), top-level
declarations, or both. A fragment is completed with what it lacks, in this order:
`param tau = 5 ms` and `param sigma = 0.3` where it reads them, the template
`dynamics leaky(tau = 5 ms)` where an area instantiates it, its own top-level lines, the
time block `time { dt = 1 ms  steps = 10 }`, the input `image [1, 8, 8]`, an area V1
holding its body lines (fed from `image`), a connection into the first area it declares when
nothing feeds it, and a readout of that area. A line `# with --set NAME=VALUE` checks the
example with that override. `dynv explain` prints the completed spec; tests check them all."""
from __future__ import annotations

import re

SET_LINE = re.compile(r"^# with --set (\S+?)=(.*)$", re.M)  # an example's overrides, one a line
FRAME_PARAMS = {"tau": "5 ms", "sigma": "0.3"}
FRAME_DYNAMICS = {"leaky": "dynamics leaky(tau = 5 ms) { tau * dr/dt = -r + input }"}
TIME = "time { dt = 1 ms  steps = 10 }"
INPUT = "input image [1, 8, 8]"
_TOP = re.compile(r"^\s*(model|time|input|readout|area|dynamics|for|if)\b|^\s*param\b(?!.*\btrainable\b)|->")


def example_params(example: str) -> dict[str, str]:
    """The `--set` overrides an example is checked with (`# with --set NAME=VALUE` lines)."""
    return {m[1]: m[2].strip() for m in SET_LINE.finditer(example)}


def example_spec(example: str) -> str:
    """`example` as a complete spec (unchanged when it is one already)."""
    top, body = _split(example)
    text = "\n".join(top)
    if re.search(r"^\s*time\b", text, re.M):
        return example
    areas = re.findall(r"^\s*area\s+(\w+)", text, re.M)
    framed = bool(body) or not areas
    first = "V1" if framed else areas[0]
    lines = [f"param {n} = {v}" for n, v in FRAME_PARAMS.items() if _reads(example, n) and not _declares(text, body, n)]
    lines += [d for n, d in FRAME_DYNAMICS.items() if re.search(rf":\s*{n}\s*\(", text)
              and not re.search(rf"\bdynamics\s+{n}\b", text)]
    lines += [*top, TIME]
    lines += [] if re.search(r"^\s*input\b", text, re.M) else [INPUT]
    if framed:
        lines += ["area V1 [4] {", *("  " + b for b in _with_output(body)), "}"]
    if not re.search(rf"->\s*{re.escape(first)}\b", text):
        lines.append(f"image -> {first} : conv(3)")
    lines += _missing_areas(text, {*areas, "V1", "image"} if framed else {*areas, "image"})
    if not re.search(r"^\s*readout\b", text, re.M):
        lines.append(f"readout {first} : avgpool | linear(2)")
    return "\n".join(lines) + "\n"


def _split(example: str) -> tuple[list[str], list[str]]:
    """The example's top-level lines (with the lines of a block opened on one) and its body lines."""
    top, body, depth = [], [], 0
    for line in example.split("\n"):
        if not line.strip():
            continue
        (top if depth or SET_LINE.match(line) or _TOP.search(line) else body).append(line)
        depth += line.count("{") - line.count("}")
    return top, body


def _with_output(body: list[str]) -> list[str]:
    """An area body that computes an output: one of only params gets a leaky ODE (or r = relu(input))."""
    if any(not re.match(r"\s*param\b", b) for b in body):
        return body
    leak = "tau * dr/dt = -r + input" if any(re.match(r"\s*param\s+tau\b", b) for b in body) else "r = relu(input)"
    return [*body, leak]


def _missing_areas(text: str, known: set[str]) -> list[str]:
    """An area for each name a connection or readout of the example uses but nobody declares; it
    reads every port the example feeds into it and is fed from the input."""
    used = re.findall(r"(?:^|->)\s*(\w+)(?:\.\w+)?\s*(?=->|:|,)", text, re.M)
    used += re.findall(r"^\s*readout\s+(\w+)", text, re.M)
    generated = [re.sub(r"\\\{[^}]*\\\}", r"\\d+", re.escape(n))  # `area L{i}` declares L1, L2, ...
                 for n in re.findall(r"^\s*area\s+([\w{}+\-* ]+?)\s*\[", text, re.M)]
    out = []
    for name in dict.fromkeys(used):
        if name in known or name == "readout" or any(re.fullmatch(g, name) for g in generated):
            continue
        ports = dict.fromkeys(re.findall(rf"->\s*{name}\.(\w+)", text))
        out += [f"area {name} [4] {{ r = relu({' + '.join(['input', *ports])}) }}", f"image -> {name} : conv(3)"]
    return out


def _reads(example: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){name}(?![\w])", re.sub(r"#.*", "", example)) is not None


def _declares(text: str, body: list[str], name: str) -> bool:
    """Whether the example gives `name` a value itself (a param, an assignment or a state)."""
    everything = text + "\n" + "\n".join(body)
    return re.search(rf"\bparam\s+{name}\b|^\s*(?:state\s+)?{name}\s*=", everything, re.M) is not None
