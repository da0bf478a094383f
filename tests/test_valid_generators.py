"""Generators (LANGUAGE.md 9.7) against the closed form: in a chain L1..Ln made by a loop,
with delay d steps per link, L_i first responds at step (i - 1) * d, exactly."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.tooling.fmt import format_source
from valid_helpers import compile_valid, source, standalone

pytestmark = pytest.mark.frontend


def _first_nonzero(values: torch.Tensor) -> int | None:
    steps = [t for t in range(values.shape[1]) if values[:, t].abs().sum() > 0]
    return steps[0] if steps else None


@pytest.mark.parametrize("n, t_ff", [(4, "2 ms"), (3, "3 ms"), (6, "1 ms")])
def test_generated_chain_arrives_at_the_closed_form_steps(n, t_ff):
    model = compile_valid("generators.dyn", {"n": n, "t_ff": t_ff})
    delay = int(t_ff.split()[0])  # dt = 1 ms
    chain = [f"L{i}" for i in range(1, n + 1)]
    assert [a for a in model.areas if a.startswith("L")] == chain
    torch.manual_seed(0)
    run = model.run(torch.rand(2, 1, 6, 6), record=chain)
    for i, area in enumerate(chain, start=1):
        arrival = (i - 1) * delay
        assert model.present_from[area] == arrival
        assert run.present[area].tolist() == [t >= arrival for t in range(12)]
        assert _first_nonzero(run.responses[area]) == arrival


def test_the_loop_if_guards_the_last_link_and_names_interpolate():
    model = compile_valid("generators.dyn")
    state = model.state_dict()
    assert {k.split(".")[0] for k in state if k.startswith("ff")} == {"ff1", "ff2", "ff3"}  # no L4 -> L5
    assert [a for a in model.areas if a.startswith("G")] == ["G1_1", "G1_2", "G2_1", "G2_2"]
    conns = {(c.source, c.target) for c in model.program.model.conns}
    assert {("L1", "G1_1"), ("L2", "G1_2"), ("L2", "G2_1"), ("L3", "G2_2")} <= conns
    assert model.program.model.readout.source == "L4"


def test_the_standalone_module_runs_the_generated_chain_alike():
    model = compile_valid("generators.dyn")
    x = torch.rand(1, 1, 6, 6)
    torch.testing.assert_close(standalone("generators.dyn", model)(x), model(x), rtol=0, atol=0)


GEN = """model G
param n = {n}
time {{ dt = 1 ms  steps = 4 }}
input image [1, 4, 4]
area L1 [2] {{ r = input }}
{body}
image -> L1 : conv(3)
readout L1 : avgpool | linear(2)
"""


def _errors(n: int, body: str):
    return [d for d in dd.check(GEN.format(n=n, body=body), file="g.dyn") if d.is_error]


def test_a_generated_name_that_collides_says_which_value():
    body = "area L2 [2] { r = input }\nfor i in 1..n {\n  area L{i + 1} [2] { r = input }\n" \
           "  image -> L{i + 1} : conv(3)\n}"
    errors = _errors(3, body)
    assert len(errors) == 1, [d.message for d in errors]
    assert errors[0].message == "area 'L2' is defined twice (first at line 6) (for i = 1)"
    assert (errors[0].span.line, errors[0].span.col) == (8, 8)


def test_loop_bounds_and_interpolations_must_be_whole_and_counting_up():
    assert _errors(1, "for i in 1..2.5 {\n}")[0].code == "E110"
    reversed_ = _errors(1, "for i in 5..2 {\n}")[0]
    assert reversed_.code == "E111" and "runs backwards (5 > 2)" in reversed_.message
    assert _errors(1, "for i in 2..1 {\n  area X{i} [2] { r = input }\n}") == []  # A..A-1 is empty
    unknown = _errors(1, "for i in 1..1 {\n  area L{j} [2] { r = input }\n}")
    assert unknown[0].code == "E115"
    assert unknown[0].message.startswith("unknown name 'j' in the name 'L{j}': not a loop variable or a param")
    assert (unknown[0].span.line, unknown[0].span.col) == (7, 10)


def test_an_error_inside_a_loop_is_reported_once_for_the_first_value():
    body = "for i in 1..3 {\n  area X{i} [2] { r = relu(input, 2) }\n  image -> X{i} : conv(3)\n}"
    errors = _errors(1, body)
    assert len(errors) == 1, [d.message for d in errors]
    assert errors[0].message == "relu() takes 1 argument, got 2 (for i = 1)"


def test_fmt_lays_out_loops_and_keeps_interpolated_names_whole():
    text = format_source(source("generators.dyn").replace("L{i+1}", "L{ i+1 }"))
    assert "for i in 1..n {\n  area L{i} [2] {" in text
    assert "    L{i} -> L{i + 1} : conv(3) as ff{i}, delay t_ff" in text
    assert format_source(text) == text


def test_every_code_of_this_part_is_in_the_catalogue_with_examples():
    import re
    from pathlib import Path

    from dynvision_dsl.diagnostics import CATALOGUE

    root = Path(dd.__file__).parent
    files = [root / "check.py", *(root / "frontend" / "check").glob("*.py")]
    used = {c for f in files for c in re.findall(r'"(E1[12]\d)"', f.read_text())}
    assert {"E110", "E111", "E115", "E118", "E121", "E123", "E126"} <= used
    for code in used:
        entry = CATALOGUE[code]
        assert entry.title and entry.explanation and entry.wrong and entry.fixed, code
