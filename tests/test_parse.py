"""Stage 1: text to AST. Spans on nodes, comments, chains, conditionals,
arguments, units, and how syntax errors read."""
import pytest

import dynvision_dsl
from dynvision_dsl.frontend import syntax as S
from dynvision_dsl.check import check_module
from dynvision_dsl.frontend.parse import parse

pytestmark = pytest.mark.frontend

HEAD = """time {
  dt = 1 ms
  steps = 10
}
input image [1, 16, 16]
"""


def model_of(body: str, params=None):
    model, diags = check_module(parse(HEAD + body, "t.dyn"), params)
    assert model is not None, "\n".join(d.format(HEAD + body) for d in diags)
    return model


def syntax_error(source: str, file: str = "bad.dyn"):
    with pytest.raises(dynvision_dsl.DynError) as caught:
        parse(source, file)
    (diag,) = caught.value.diagnostics
    return diag, caught.value


# ----------------------------------------------------------------------- spans
SPANNED = """# a comment line
area V1 [4] { r = relu(input) }   # a trailing comment
image -> V1 : conv(3, stride=2) | maxpool(2) as pool, delay 2 ms
"""


def test_a_connection_spans_its_whole_text():
    conn = parse(SPANNED, "f.dyn").decls[1]
    assert isinstance(conn, S.Connection)
    assert (conn.span.file, conn.span.line, conn.span.col) == ("f.dyn", 3, 1)
    assert (conn.span.end_line, conn.span.end_col) == (3, 65)


def test_an_op_spans_from_its_name_to_its_alias():
    conv, pool = parse(SPANNED).decls[1].pipeline
    assert (conv.span.line, conv.span.col, conv.span.end_col) == (3, 15, 32)
    assert (pool.name.span.col, pool.span.end_col) == (35, 53)
    assert pool.alias.name == "pool" and pool.alias.span.col == 49


def test_identifiers_carry_their_own_spans():
    area, conn = parse(SPANNED).decls
    assert (area.name.name, area.name.span.line, area.name.span.col) == ("V1", 2, 6)
    assert [(e.area.name, e.area.span.col) for e in conn.chain] == [("image", 1), ("V1", 10)]
    (assign,) = area.body
    assert (assign.var.span.line, assign.var.span.col) == (2, 15)
    relu = assign.value
    assert (relu.func.name, relu.func.span.col, relu.args[0].span.col) == ("relu", 19, 24)


def test_a_delay_keeps_its_number_and_unit():
    delay = parse(SPANNED).decls[1].delay
    assert (delay.value, delay.unit, delay.span.col) == (2.0, "ms", 61)


def test_a_check_error_points_into_the_file_it_came_from():
    (error,) = [d for d in dynvision_dsl.check(HEAD + "area V1 [4] { r = relu(input) }\n"
                                               "image -> V1 : conv(3)\nreadout V9 : avgpool | linear(2)\n",
                                               file="specs/x.dyn") if d.is_error]
    assert str(error.span) == "specs/x.dyn:8:9"


# -------------------------------------------------------------------- comments
def test_comments_are_ignored_everywhere():
    plain = parse("area V1 [4] { r = relu(input) }\nimage -> V1 : conv(3)\n")
    commented = parse("# head\narea V1 [4] { # open\n  r = relu(input) # body\n} # close\n"
                      "image -> V1 : conv(3) # tail\n# end")
    strip = lambda m: [type(d).__name__ for d in m.decls]
    assert strip(plain) == strip(commented) == ["AreaDecl", "Connection"]
    assert commented.decls[0].body[0].var.name == "r"


def test_a_hash_inside_a_string_is_not_a_comment():
    (param,) = parse('param mode = "a#b"').decls
    assert param.value.value == "a#b"


# ---------------------------------------------------------------------- chains
CHAIN = """area V1 [4] { r = relu(input) }
area V2 [4] { r = relu(input) }
area V4 [4] { r = relu(input) }
image -> V1 -> V2 -> V4 : conv(3), delay 1 ms
readout V4 : avgpool | linear(2)
"""


def test_a_chain_parses_as_one_connection_with_every_endpoint():
    conn = parse(CHAIN).decls[3]
    assert [e.area.name for e in conn.chain] == ["image", "V1", "V2", "V4"]


def test_a_chain_expands_to_one_connection_per_arrow_sharing_pipeline_and_delay():
    model = model_of(CHAIN)
    assert [(c.source, c.target) for c in model.conns] == [("image", "V1"), ("V1", "V2"), ("V2", "V4")]
    assert {c.delay_steps for c in model.conns} == {1}
    assert {tuple(o.kind for o in c.ops) for c in model.conns} == {("conv",)}
    assert len({c.ops[0].path for c in model.conns}) == 3  # each link owns its conv


# ---------------------------------------------------------------- conditionals
BRANCHES = """param mode = "a"
if mode == "a" {
  param k = 1
} else if mode == "b" {
  param k = 3
} else {
  param k = 5
}
area V1 [4] { r = relu(input) }
image -> V1 : conv(k)
readout V1 : avgpool | linear(2)
"""


def test_if_else_if_else_nests_in_the_else_branch():
    cond = parse(BRANCHES).decls[1]
    assert isinstance(cond, S.If) and len(cond.then) == 1
    (inner,) = cond.orelse
    assert isinstance(inner, S.If)
    assert inner.orelse[0].value.value == 5


@pytest.mark.parametrize("mode, k", [("a", 1), ("b", 3), ("c", 5)])
def test_each_branch_is_chosen_by_its_condition(mode, k):
    model = model_of(BRANCHES, {"mode": mode})
    assert model.params["k"] == k
    assert model.conns[0].ops[0].a["k"] == k


def test_if_blocks_work_inside_an_area_body():
    body = ("param gain = 2\narea V1 [4] {\n  if gain > 1 {\n    r = gain * input\n  } else {\n    r = input\n  }\n}\n"
            "image -> V1 : conv(3)\nreadout V1 : avgpool | linear(2)\n")
    (assign,) = model_of(body).areas["V1"].assigns
    assert assign.value.fn == "mul"
    (assign,) = model_of(body, {"gain": 1}).areas["V1"].assigns
    assert (assign.value.kind, assign.value.name) == ("port", "input")


# ------------------------------------------------------------------- arguments
def test_keyword_arguments_follow_positional_ones():
    (op,) = parse("image -> V1 : conv(3, stride=2, bias=false)").decls[0].pipeline
    assert [a.value for a in op.args] == [3.0]
    assert [(k.name.name, type(k.value).__name__) for k in op.kwargs] == [("stride", "Num"), ("bias", "Bool")]


def test_a_positional_argument_after_a_keyword_is_a_syntax_error():
    diag, _ = syntax_error("image -> V1 : conv(stride=2, 3)")
    assert diag.message == "a positional argument follows a keyword argument"
    assert (diag.span.line, diag.span.col) == (1, 30)


def test_an_op_without_parentheses_has_no_arguments():
    ops = parse("V1 -> V2 : adapt | avgpool").decls[0].pipeline
    assert [(o.name.name, o.args, o.kwargs) for o in ops] == [("adapt", (), ()), ("avgpool", (), ())]


# ----------------------------------------------------------------------- units
@pytest.mark.parametrize("text, value, unit", [("5 ms", 5.0, "ms"), ("0.5 s", 0.5, "s"), ("1e-3 s", 1e-3, "s"),
                                               ("7", 7.0, None)])
def test_numbers_keep_their_unit(text, value, unit):
    (param,) = parse(f"param x = {text}").decls
    assert (param.value.value, param.value.unit) == (value, unit)


def test_one_second_is_a_thousand_milliseconds():
    body = ("param a = 1 s\nparam b = 1000 ms\nparam same = a == b\n"
            "area V1 [4] { r = relu(input) }\nimage -> V1 : conv(3)\nV1 -> V1 : conv(3), delay 0.002 s\n"
            "readout V1 : avgpool | linear(2)\n")
    model = model_of(body)
    assert model.params["a"] == model.params["b"] == 1000.0
    assert model.params["same"] is True
    lateral = model.conns[1]
    assert (lateral.delay_ms, lateral.delay_steps) == (2.0, 2)


def test_a_unit_glued_to_its_number_still_reads_as_a_unit():
    (param,) = parse("param x = 5ms").decls
    assert (param.value.value, param.value.unit) == (5.0, "ms")


def test_a_name_that_starts_like_a_unit_is_a_name():
    (param,) = parse("param x = steps").decls
    assert isinstance(param.value, S.Name) and param.value.name == "steps"


# --------------------------------------------------------------- syntax errors
def test_a_syntax_error_reads_file_line_col_error_then_line_and_caret():
    source = "time { dt = 1 ms }\ninput image [1, 16 16]\n"
    diag, exc = syntax_error(source, "specs/bad.dyn")
    lines = diag.format(source).splitlines()
    assert lines[0] == "specs/bad.dyn:2:20: error[E001]: unexpected '16': expected ',' or ']'"
    assert lines[1] == "  input image [1, 16 16]"
    assert lines[2] == "                     ^~"
    assert str(exc).splitlines()[:3] == lines[:3]


def test_a_bad_character_is_located():
    diag, _ = syntax_error("param x = 5 ms\nparam y = 2 @ 3\n")
    assert (diag.span.line, diag.span.col, diag.message) == (2, 13, "unexpected character '@'")


def test_a_bare_unit_is_a_syntax_error():
    diag, _ = syntax_error("param x = ms")
    assert diag.message == "'ms' is a unit and may only follow a number"
    assert "1 ms" in diag.hint


def test_a_reserved_word_cannot_name_a_param():
    diag, _ = syntax_error("param if = 3")
    assert diag.message == "'if' is a reserved word and cannot name a param"


def test_a_missing_closing_brace_is_reported_where_the_next_declaration_starts():
    source = "area V1 [4] {\n  r = relu(input)\n\nimage -> V1 : conv(3)\n"
    diag, _ = syntax_error(source)
    assert (diag.span.line, diag.span.col) == (4, 1)
    assert "opened at line 1" in diag.message and "'}'" in diag.message


def test_a_missing_closing_brace_at_the_end_of_the_file():
    diag, _ = syntax_error("area V1 [4] {\n  r = relu(input)\n")
    assert diag.message == "unexpected end of file: the body of area V1 (opened at line 1) has no closing '}'"


def test_an_unfinished_declaration_at_the_end_is_not_blamed_on_braces():
    diag, _ = syntax_error("image -> V1 : conv(3),")
    assert diag.message == "unexpected end of file: expected 'delay'"
    assert diag.hint is None


def test_port_declares_an_optional_port_with_its_span():
    module = parse(HEAD + "area V1 [4] { port fb  r = relu(input + fb) }\n", "p.dyn")
    area = next(d for d in module.decls if isinstance(d, S.AreaDecl))
    port = area.body[0]
    assert isinstance(port, S.PortDecl) and port.var.name == "fb"
    assert (port.var.span.line, port.var.span.col, port.var.span.end_col) == (6, 20, 22)


def test_port_is_a_reserved_word():
    with pytest.raises(dynvision_dsl.DynError) as caught:
        parse(HEAD + "param port = 2\n", "p.dyn")
    (d,) = caught.value.diagnostics
    assert d.code == "E004" and d.message == "'port' is a reserved word and cannot name a param"
