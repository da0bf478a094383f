"""`dynv fmt`: one canonical layout; idempotent; the checked model and every comment survive."""
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, SPECS
from dynvision_dsl.check import check_module
from dynvision_dsl.cli import main
from dynvision_dsl.diagnostics import DynError
from dynvision_dsl.frontend.parse import parse
from dynvision_dsl.tooling.fmt import _comments, format_source, structure

ALL = SPECS + sorted((ROOT / "tests").rglob("*.dyn")) + sorted((SHARED / "examples").rglob("*.dyn")) + \
    sorted((ROOT / "examples").glob("*.dyn"))


def _ids(path: Path) -> str:
    return str(path.relative_to(path.parents[1]))


def _checked(source: str, file: str):
    model, diags = check_module(parse(source, file))
    return structure(model), [(d.severity, d.code) for d in diags]


@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_fmt_is_idempotent_and_keeps_the_checked_model_and_comments(path):
    source = path.read_text()
    try:
        once = format_source(source, str(path))
    except DynError as exc:  # specs with syntax errors are refused with the parser's own diagnostic
        assert exc.diagnostics[0].code in ("E001", "E002", "E003", "E004", "E005", "E006", "E007", "E008", "E009")
        return
    assert format_source(once, str(path)) == once
    before, after = _checked(source, str(path)), _checked(once, str(path))
    assert after == before
    assert before[0] is not None or before[1]  # a checked model, or the same diagnostics
    assert [c.text for c in _comments(once, [])] == [c.text for c in _comments(source, [])]


def test_the_corpus_is_there():
    assert len(SPECS) >= 8 and len(ALL) >= 80


TRICKY = """

# head comment
model   T   # trailing model
time{dt=1 ms steps=4}   # after time
input image[1,8,8]
param a=1 param bb = 2 # trails bb
area V1[4]{ # opens V1
  # inside first
  tau*dr / dt=-r+input  # ode
  r=relu( r )


  # before close
} # closes V1
image->V1:conv(3,stride=1), # inner comment
   delay 1 ms
if a==1{V1->V1:conv(3),delay 1 ms}else if bb==2{ V1 -> V1 : conv(3), delay 2 ms } else { # else
}
readout V1:avgpool|linear(2)
# tail
"""

EXPECTED = """# head comment
model T  # trailing model
time {
  dt    = 1 ms
  steps = 4
}  # after time
input image [1, 8, 8]
param a  = 1
param bb = 2  # trails bb
area V1 [4] {  # opens V1
  # inside first
  tau * dr/dt = -r + input  # ode
  r = relu(r)

  # before close
}  # closes V1
# inner comment
image -> V1 : conv(3, stride=1), delay 1 ms
if a == 1 {
  V1 -> V1 : conv(3), delay 1 ms
} else if bb == 2 {
  V1 -> V1 : conv(3), delay 2 ms
} else {  # else
}
readout V1 : avgpool | linear(2)
# tail
"""


def test_fmt_lays_out_blocks_spacing_and_comments_canonically():
    assert format_source(TRICKY) == EXPECTED


def test_fmt_aligns_runs_of_params_connections_and_trailing_comments():
    source = ("param tau = 5 ms # leak\nparam t_feedback = 30 ms   # long\n\nparam x = 1\n"
              "image -> V1 : conv(3)\nV1 -> V2 : adapt, delay 2 ms\n")
    assert format_source(source) == ("param tau        = 5 ms   # leak\nparam t_feedback = 30 ms  # long\n\n"
                                     "param x = 1\nimage -> V1 : conv(3)\nV1 -> V2    : adapt, delay 2 ms\n")


def test_fmt_keeps_strings_and_hashes_inside_them():
    source = 'param mode = "a # not a comment"   # a comment\n'
    assert format_source(source) == 'param mode = "a # not a comment"  # a comment\n'


def test_fmt_unary_minus_keyword_arguments_and_powers():
    source = "area V1 [4] : leaky(tau = 2*-x, k=( 1+2 )^2)\n"
    assert format_source(source) == "area V1 [4] : leaky(tau=2 * -x, k=(1 + 2) ^ 2)\n"


# ------------------------------------------------------------------ the CLI
def test_dynv_fmt_check_and_write(tmp_path, capsys):
    spec = tmp_path / "t.dyn"
    spec.write_text(TRICKY)
    assert main(["fmt", "--check", str(spec)]) == 1
    assert spec.read_text() == TRICKY and "would be reformatted" in capsys.readouterr().out
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_text() == EXPECTED
    assert main(["fmt", "--check", str(spec)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["t.dyn"]  # no temporary file left behind


def test_dynv_fmt_refuses_a_syntax_error_and_leaves_the_file(tmp_path, capsys):
    spec = tmp_path / "bad.dyn"
    spec.write_text("area V1 [4 {\n")
    assert main(["fmt", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:1:" in err and "not formatted" in err and "Traceback" not in err
    assert spec.read_text() == "area V1 [4 {\n"
    assert main(["fmt", str(tmp_path / "missing.dyn")]) == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this is a binary file, not a .dyn spec"),
    ("model A # caf\xe9\n".encode("latin-1"), "byte 0xe9 is not UTF-8 text"),
    (None, "this is a directory, not a .dyn spec"),
])
def test_dynv_fmt_reads_through_the_one_spec_reader(tmp_path, capsys, data, message):
    """fmt read files itself and a binary spec ended in a UnicodeDecodeError traceback."""
    spec = tmp_path / "odd.dyn"
    spec.mkdir() if data is None else spec.write_bytes(data)
    assert main(["fmt", str(spec)]) == 1
    err = capsys.readouterr().err
    assert str(spec) in err and message in err and "Traceback" not in err
    assert data is None or spec.read_bytes() == data
