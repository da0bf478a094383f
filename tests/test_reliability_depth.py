"""Depth and size: deeply nested and very long specs give a located error or
work; none raises RecursionError (issue 9, "Depth and size").

Nesting past the limit (`if` blocks, calls, unary operators, parenthesised
right operands) is a `file:line:col` "nested too deeply (limit N)" error at the
first construct past the limit; a chain of operators at one level (a 5000-term
sum), pure grouping parentheses and chains of areas or params have no limit.
Timing targets live in benchmarks/large_specs.py, not here.
"""
import re

import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.frontend import ir
from dynvision_dsl.frontend.check import check_module
from dynvision_dsl.middle.algebra import linear_split
from dynvision_dsl.cli import main
from dynvision_dsl.diagnostics import EXCERPT_WIDTH, Span, _excerpt
from dynvision_dsl.graph import build_graph
from dynvision_dsl.frontend.parse import parse
from dynvision_dsl.frontend.syntax import MAX_NESTING

HEAD = "model Probe\ntime { dt = 1 ms  steps = 3 }\ninput image [1, 8, 8]\n"  # 3 lines
TAIL = "image -> A : identity\nreadout A : avgpool | linear(2)\n"
AREA = "area A [1] { r = relu(input) }\n"
LIMIT = MAX_NESTING


def _area(expr: str) -> str:
    """A spec whose area A computes `expr` on line 5."""
    return HEAD + f"area A [1] {{\nr = {expr}\n}}\n" + TAIL


def nested_ifs(n: int) -> str:
    return HEAD + "if true {\n" * n + "param p = 1\n" + "}\n" * n + AREA + TAIL


def nested_area_ifs(n: int) -> str:
    return HEAD + "area A [1] {\n" + "if true {\n" * n + "r = relu(input)\n" + "}\n" * n + "}\n" + TAIL


def nested_dynamics_ifs(n: int) -> str:
    return (HEAD + "dynamics d() {\n" + "if true {\n" * n + "r = relu(input)\n" + "}\n" * n + "}\n"
            + "area A [1] : d()\n" + TAIL)


def nested_calls(n: int) -> str:
    return _area("relu(" * n + "input" + ")" * n)


def nested_negations(n: int) -> str:
    return _area("-" * n + "input")


def nested_not(n: int) -> str:
    return HEAD + "if " + "not " * n + "true { param p = 1 }\n" + AREA + TAIL


def right_nested_sum(n: int) -> str:
    return HEAD + "param p = " + "1 + (" * n + "1" + ")" * n + "\n" + AREA + TAIL


def grouping_parens(n: int) -> str:
    return _area("(" * n + "input" + ")" * n)


def long_sum(n: int) -> str:
    return _area(" + ".join(f"{i} * input" for i in range(1, n + 1)))


def long_param_sum(n: int) -> str:
    return HEAD + "param p = " + " + ".join("1" for _ in range(n)) + "\n" + "area A [1] { r = p * input }\n" + TAIL


def area_chain(n: int, reverse: bool = False, feedback: bool = False) -> str:
    """`area A{i} [4] : leaky(...)`, `A{i} -> A{i+1} : conv(3)`: the benchmark's chain."""
    areas = [f"area A{i} [4] : leaky(tau=2 ms)" for i in range(n)]
    lines = [HEAD.replace("Probe", "Chain"), "dynamics leaky(tau) {\n  tau * dr/dt = -r + input\n  r = relu(r)\n}",
             *(reversed(areas) if reverse else areas), "image -> A0 : conv(3)",
             *(f"A{i} -> A{i + 1} : conv(3)" for i in range(n - 1)), f"readout A{n - 1} : avgpool | linear(2)"]
    if feedback:
        lines.append(f"A{n - 1} -> A0 : conv(3), delay 1 ms")
    return "\n".join(lines) + "\n"


def _only_error(source: str):
    diags = [d for d in dd.check(source, file="deep.dyn") if d.is_error]
    assert len(diags) == 1, [d.message for d in diags]
    return diags[0]


# ------------------------------------------------- past the limit: located errors
# (spec, line, column of the first construct past the limit, what is nested)
PAST_LIMIT = [
    pytest.param(nested_ifs(1000), 4 + LIMIT, 1, "'if' blocks", id="1000-nested-ifs"),
    pytest.param(nested_area_ifs(1000), 5 + LIMIT, 1, "'if' blocks", id="area-ifs"),
    pytest.param(nested_dynamics_ifs(1000), 5 + LIMIT, 1, "'if' blocks", id="dynamics-ifs"),
    pytest.param(nested_calls(300), 5, 5 * LIMIT + 5, "expression", id="300-nested-calls"),
    pytest.param(nested_negations(1000), 5, LIMIT + 5, "expression", id="1000-negations"),
    pytest.param(nested_not(1000), 4, 4 * LIMIT + 4, "expression", id="1000-nots"),
    pytest.param(right_nested_sum(1000), 4, 11 + 5 * LIMIT, "expression", id="1000-right-nested-sum"),
]


@pytest.mark.parametrize("source, line, col, what", PAST_LIMIT)
def test_nesting_past_the_limit_is_a_located_error(source, line, col, what):
    d = _only_error(source)
    assert d.message == f"{what} nested too deeply (limit {LIMIT})"
    assert (d.span.file, d.span.line, d.span.col) == ("deep.dyn", line, col)
    assert d.hint
    with pytest.raises(dd.DynError, match=rf"deep.dyn:{line}:{col}: error\[E009\]: .*nested too deeply \(limit {LIMIT}\)"):
        dd.compile(source, file="deep.dyn")


def test_the_cli_reports_deep_nesting_without_a_traceback(tmp_path, capsys):
    spec = tmp_path / "deep.dyn"
    spec.write_text(nested_calls(5000))
    assert main(["check", str(spec)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"deep.dyn:5:{5 * LIMIT + 5}: error[E009]: expression nested too deeply (limit {LIMIT})" in text
    assert "Traceback" not in text and "RecursionError" not in text


def test_a_long_source_line_is_cut_around_the_caret():
    text, col, width = _excerpt("x" * 500 + "HERE" + "y" * 500, 501, 4)
    assert text[col - 1:col - 1 + width] == "HERE"
    assert text.startswith("...") and text.endswith("...") and len(text) == EXCERPT_WIDTH + 6
    short = "r = relu(input)"
    assert _excerpt(short, 5, 11) == (short, 5, 11)
    formatted = dd.DynError(dd.check(nested_calls(5000), file="deep.dyn"), nested_calls(5000)).render()
    assert max(len(line) for line in formatted.splitlines()) <= EXCERPT_WIDTH + 10


def test_a_deep_set_value_is_an_error_about_the_value():
    errors = [d for d in dd.check(HEAD + "param p = 1\n" + AREA + TAIL, params={"p": "-" * 5000 + "1"}) if d.is_error]
    assert len(errors) == 1 and str(errors[0].span).startswith("params={'p': ") and "nested too deeply" in errors[0].message


# ------------------------------------------------------- at the limit: it works
def test_nesting_at_the_limit_compiles_and_computes():
    x = torch.randn(2, 1, 8, 8)
    for source, expected in ((nested_calls(LIMIT), torch.relu(x)), (nested_negations(LIMIT), x)):
        model = dd.compile(source)
        with torch.no_grad():
            got = model.run(x, record=["A"]).responses["A"][:, 0]
        assert torch.equal(got, expected)


@pytest.mark.parametrize("make", [nested_ifs, nested_area_ifs, nested_not, right_nested_sum],
                         ids=["ifs", "area-ifs", "nots", "right-nested-sum"])
def test_nesting_at_the_limit_checks(make):
    assert not [d for d in dd.check(make(LIMIT)) if d.is_error]


def test_right_nested_sum_at_the_limit_has_its_value():
    program, _ = dd.build(right_nested_sum(LIMIT))
    assert program.model.params["p"] == LIMIT + 1


def test_grouping_parentheses_do_not_nest():
    x = torch.randn(1, 1, 8, 8)
    model = dd.compile(grouping_parens(5000))
    assert torch.equal(model.run(x, record=["A"]).responses["A"][:, 0], x)


# ------------------------------------------------- long sums: no limit at all
def test_a_400_term_sum_compiles_and_equals_its_closed_form():
    n = 400
    source = long_sum(n)
    model = dd.compile(source)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        got = model.run(x, record=["A"]).responses["A"][:, 0]
    torch.testing.assert_close(got, x * (n * (n + 1) / 2), rtol=1e-5, atol=0)
    code = dd.emit(source)
    compile(code, "<generated>", "exec")  # Python's own parser nests at most ~200 parentheses
    assert max(_paren_depth(line) for line in code.splitlines()) <= 4


def _paren_depth(line: str) -> int:
    depth = deepest = 0
    for ch in re.sub(r'"[^"]*"|\'[^\']*\'', "", line):
        depth += ch in "([{"
        depth -= ch in ")]}"
        deepest = max(deepest, depth)
    return deepest


def test_a_400_term_param_sum_has_its_value():
    program, _ = dd.build(long_param_sum(400))
    assert program.model.params["p"] == 400


@pytest.mark.parametrize("solver", ["euler", "rk4", "exponential"])
def test_a_2000_term_sum_equals_its_closed_form_with_every_solver(solver):
    n = 2000
    spec = HEAD + f"area A [1] {{\nsolver {solver}\n2 ms * dr/dt = -r + RHS\n}}\n" + TAIL
    long = dd.compile(spec.replace("RHS", " + ".join(f"{i} * input" for i in range(1, n + 1))))
    short = dd.compile(spec.replace("RHS", f"{n * (n + 1) // 2} * input"))
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        got, want = (m.run(x, record=["A"]).responses["A"] for m in (long, short))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=0)


def test_long_chains_of_and_or_and_products():
    flags = " and ".join("true" for _ in range(3000))
    alternatives = " or ".join("false" for _ in range(3000))
    source = (HEAD + f"param c = {flags}\n" + f"if {alternatives} or c {{ param q = 2 }}\n"
              + "area A [1] { r = relu(input) * " + " * ".join("1" for _ in range(3000)) + " * q }\n" + TAIL)
    program, _ = dd.build(source)
    assert program.model.params["c"] is True and program.model.params["q"] == 2


def test_linear_split_of_a_long_sum_in_a_loop():
    span = Span("x", 1, 1, 1, 2)
    r = ir.Ref("state", "r", span)
    expr = ir.Apply("neg", (r,), span)
    for i in range(5000):
        term = ir.Apply("mul", (ir.Const(float(i), span), ir.Ref("port", "input", span)), span)
        expr = ir.Apply("add", (expr, term), span)
    a, b = linear_split(expr, "r")
    assert sum(1 for n in ir.walk(b) if isinstance(n, ir.Ref)) == 5000
    assert isinstance(a, ir.Apply) and a.fn == "neg"
    with pytest.raises(dd.DynError, match="linear in 'r'"):
        linear_split(ir.Apply("add", (expr, ir.Apply("mul", (r, r), span)), span), "r")


@pytest.mark.parametrize("rhs, col", [("-r + relu(r) * 2 + input", 21), ("-r + input * (r * r)", 30),
                                      ("-r + (input + r) / r", 21)])
def test_the_first_nonlinear_part_is_the_one_reported(rhs, col):
    """As the recursive linear_split reported it (checked against it when it was replaced)."""
    source = HEAD + f"area A [1] {{\nsolver exponential\n2 ms * dr/dt = {rhs}\n}}\n" + TAIL
    d = _only_error(source)
    assert "linear in 'r'" in d.message and (d.span.line, d.span.col) == (6, col)


def test_module_names_that_start_another_are_found_among_many():
    pipes = "".join(f"image -> A : conv(3) as m{i}\n" for i in range(300))
    source = HEAD + "area A [1] { r = relu(input) }\n" + pipes + "image -> A : conv(3) as m1.x\n" \
        "image -> A : conv(3) as m2x.y\nreadout A : avgpool | linear(2)\n"
    errors = [d for d in dd.check(source, file="deep.dyn") if d.is_error]
    assert [(d.message, d.span.line) for d in errors] == [("module name 'm1' is also the start of 'm1.x'", 6)]


def test_fold_visits_children_first_left_to_right():
    span = Span("x", 1, 1, 1, 2)
    leaf = lambda v: ir.Const(v, span)  # noqa: E731
    tree = ir.Apply("add", (ir.Apply("neg", (leaf(1.0),), span), ir.Apply("mul", (leaf(2.0), leaf(3.0)), span)), span)
    seen = []
    ir.fold(tree, lambda e, args: seen.append(e.value if isinstance(e, ir.Const) else e.fn))
    assert seen == [1.0, "neg", 2.0, 3.0, "mul", "add"]


# ------------------------------------------------- chains of areas and params
def test_a_1000_area_chain_checks_and_compiles():
    source = area_chain(1000)
    assert not [d for d in dd.check(source) if d.is_error]
    model = dd.compile(source)
    assert len(model.areas) == 1000
    with torch.no_grad():
        assert model(torch.rand(1, 1, 8, 8)).shape == (1, 3, 2)


def test_a_long_chain_declared_backwards_gets_every_size():
    module = parse(area_chain(300, reverse=True).replace("input image [1, 8, 8]", "input image [1, 9, 7]"))
    model, diags = check_module(module)
    assert model is not None, [d.message for d in diags]
    assert {a.size for a in model.areas.values()} == {(9, 7)}


def test_the_graph_of_a_long_chain_with_feedback_is_classified():
    n = 1200
    model, diags = check_module(parse(area_chain(n, feedback=True)))
    assert model is not None, [d.message for d in diags]
    g = build_graph(model)
    kinds = {(u, v): d["kind"] for u, v, d in g.edges(data=True)}
    assert kinds[(f"A{n - 1}", "A0")] == "feedback"
    assert {kinds[(f"A{i}", f"A{i + 1}")] for i in range(n - 1)} == {"feedforward"}
    assert g.nodes[f"A{n - 1}"]["rank"] == n


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_a_chain_of_3000_params_resolves(order):
    n = 3000
    decls = ["param p0 = 1"] + [f"param p{i} = p{i - 1} + 1" for i in range(1, n)]
    if order == "backward":
        decls.reverse()
    source = HEAD + "\n".join(decls) + f"\nif p{n - 1} > 0 {{ param q = 1 }}\n" + AREA + TAIL
    program, _ = dd.build(source)
    assert program.model.params[f"p{n - 1}"] == n and program.model.params["q"] == 1


def test_a_cycle_of_3000_params_is_one_located_error():
    n = 3000
    source = HEAD + "".join(f"param p{i} = p{(i + 1) % n} + 1\n" for i in range(n)) + AREA + TAIL
    d = _only_error(source)
    assert d.message == "param 'p0' is defined in terms of itself"
    assert (d.span.line, d.span.col) == (4, 12)


def test_an_error_at_the_root_of_a_param_chain_is_reported_once():
    source = HEAD + "param p0 = nope\n" + "".join(f"param p{i} = p{i - 1} + 1\n" for i in range(1, 3000)) + AREA + TAIL
    d = _only_error(source)
    assert d.message.startswith("unknown param 'nope'") and (d.span.line, d.span.col) == (4, 12)


def test_params_nested_at_the_limit_stack_no_recursion():
    deep = lambda inner: "max(" * LIMIT + inner + ", 1)" * LIMIT  # noqa: E731
    decls = [f"param p{i} = {deep(f'p{i - 1}')}" for i in range(20, 0, -1)] + ["param p0 = 1"]
    source = HEAD + "\n".join(decls) + f"\nif {deep('p20')} > 0 {{ param q = 1 }}\n" + AREA + TAIL
    program, _ = dd.build(source)
    assert program.model.params["p20"] == 1 and program.model.params["q"] == 1


# ------------------------------------------------- nothing raises RecursionError
PAST_EVERY_LIMIT = [nested_ifs, nested_area_ifs, nested_dynamics_ifs, nested_calls, nested_negations, nested_not,
                    right_nested_sum, grouping_parens, long_sum, long_param_sum,
                    lambda n: _area("(" * n + "input" + ")" * (n - 1))]  # one ')' short: a syntax error


@pytest.mark.parametrize("make", PAST_EVERY_LIMIT, ids=lambda f: f.__name__)
def test_nothing_raises_recursion_error(make):
    """5000 of everything: the spec compiles or is refused with located errors."""
    try:
        dd.compile(make(5000), file="deep.dyn")
    except dd.DynError as exc:
        assert exc.errors and all(d.span.file == "deep.dyn" and d.span.line > 0 for d in exc.errors)
