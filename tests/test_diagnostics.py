"""Diagnostics: every code in the one catalogue (its wrong example gives it, its fixed example
checks clean), `dynv explain`, the reference's table of codes, carets on the offending token,
and warnings surfaced by `dd.compile`."""
import re
import warnings
from pathlib import Path

import pytest

import dynvision_dsl as dd
from dynvision_dsl.cli import main
from dynvision_dsl.diagnostics import CATALOGUE, source_lines
from dynvision_dsl.diagnostics.catalogue import table, update_reference
from dynvision_dsl.diagnostics.examples import example_params, example_spec
from dynvision_dsl.util.params import parse_set

pytestmark = pytest.mark.frontend

HERE = Path(__file__).resolve().parent
INVALID = sorted((HERE / "invalid").glob("*.dyn"))
REFERENCE = HERE.parent / "docs" / "LANGUAGE.md"
NOT_A_SPEC = {"E010"}  # the spec file cannot be read: no spec text shows it (tested below with a file)
NOT_A_SPEC |= {"E160", "E161", "E162"}  # a compiler pass failed: no spec shows it (tests/test_passmanager.py)


def _check(example: str) -> list:
    given = parse_set([f"{k}={v}" for k, v in example_params(example).items()])
    return dd.check(example_spec(example), params=given, file="example.dyn")


# ------------------------------------------------------------------ catalogue
@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_the_wrong_example_gives_its_code_and_the_fixed_one_checks_clean(code):
    entry = CATALOGUE[code]
    assert entry.title and entry.explanation
    if code in NOT_A_SPEC:
        assert not entry.wrong and not entry.fixed
        return
    assert entry.wrong and entry.fixed, f"{code} needs a wrong and a fixed example"
    got = _check(entry.wrong)
    assert code in [d.code for d in got], [(d.code, d.message) for d in got]
    assert [d.format() for d in _check(entry.fixed)] == []


def test_codes_are_well_formed_and_severities_match():
    for code, entry in CATALOGUE.items():
        assert re.fullmatch(r"[EW]\d{3}", code) and entry.code == code
        assert entry.severity == ("error" if code[0] == "E" else "warning")


def test_a_fragment_is_completed_into_a_spec():
    spec = example_spec("tau * dr/dt = -r + input + sigma * noise()")
    assert spec.splitlines() == ["param tau = 5 ms", "param sigma = 0.3", "time { dt = 1 ms  steps = 10 }",
                                 "input image [1, 8, 8]", "area V1 [4] {", "  tau * dr/dt = -r + input + sigma * noise()",
                                 "}", "image -> V1 : conv(3)", "readout V1 : avgpool | linear(2)"]
    top = example_spec("param gain = 2\narea V2 [4] { r = relu(input) * gain }")
    assert top.splitlines()[-2:] == ["image -> V2 : conv(3)", "readout V2 : avgpool | linear(2)"]
    assert example_spec(CATALOGUE["E052"].wrong) == CATALOGUE["E052"].wrong  # complete already
    assert dd.check(example_spec("r = relu(input)")) == []
    assert dd.check(example_spec("area L1 [4] : leaky()")) == []
    assert dd.check(example_spec("param tau = 5 ms trainable")) == []  # an area of params gets an ODE
    assert dd.check(example_spec("V1 -> V2.fb : conv(3), delay 1 ms")) == []  # V2 is declared, reading fb


def test_a_missing_file_gets_the_file_code(tmp_path):
    (diag,) = dd.check(tmp_path / "nope.dyn")
    assert diag.code == "E010" and "no such file" in diag.message


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_diagnostic_of_the_invalid_corpus_has_a_catalogued_code(path):
    for d in dd.check(path.read_text(), file=str(path)):
        assert d.code in CATALOGUE, f"{d.format()} has no catalogued code"
        assert CATALOGUE[d.code].severity == d.severity


def test_a_diagnostic_prints_its_code():
    (error,) = [d for d in dd.check(CATALOGUE["E052"].wrong, file="x.dyn") if d.is_error]
    assert error.format().startswith("x.dyn:4:33: error[E052]: unknown name 'w_aa' (did you mean 'w_a'?)")


# ---------------------------------------------------------------- dynv explain
def test_explain_prints_meaning_and_both_examples(capsys):
    assert main(["explain", "e052"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("E052: unknown name in an equation (error)")
    assert "wrong:\n    param w_a = 0.5" in out and "fixed:" in out
    assert "gives: wrong.dyn:4:33: error[E052]: unknown name 'w_aa' (did you mean 'w_a'?)" in out


def test_explain_an_unknown_code_says_so_and_suggests(capsys):
    assert main(["explain", "E52"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "dynv explain: unknown code 'E52' (did you mean E052?); codes look like E052 or W001"


def test_explain_a_word_that_is_no_code(capsys):
    assert main(["explain", "nonsense"]) == 2
    assert "unknown code 'nonsense'" in capsys.readouterr().err


def test_the_reference_lists_every_code():
    text = REFERENCE.read_text()
    assert update_reference(text) == text, "run: python -m dynvision_dsl.tooling.codes docs/LANGUAGE.md"
    for code in CATALOGUE:
        assert f"| `{code}` |" in table()


# ------------------------------------------------------------- carets (§9.1)
def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?", text))


DECLARATIONS = ("model", "time", "param", "readout", "area", "dynamics", "state", "port", "output",
                "solver")


def _on_token(message: str, token: str) -> bool:
    """Whether the caret's text is what the message is about. Where the message quotes names or
    expressions, the caret covers one of them (or a word of one: the zero of 'input / 0'), or
    text the message repeats; elsewhere it covers one token or expression, never a whole
    declaration."""
    token = token.strip()
    words = token.split()
    if not token or len(words) > 1 and words[0] in DECLARATIONS:
        return False
    if re.search(rf"(?<![\w.]){re.escape(token)}(?![\w])", message):
        return True
    quoted = re.findall(r"(?<![A-Za-z])'([^']+)'", message)
    if quoted:
        generated = re.sub(r"\\\{[^}]*\\\}", r"\\d+", re.escape(token))  # `L{i + 1}` names L2 when i = 1
        return any(q == token or token in _words(q) or (q in token and len(token) <= 40)
                   or re.fullmatch(generated, q) for q in quoted)
    return len(token) <= 40


WHOLE_SPEC = {"E001", "E029", "E035"}  # where the parser stopped, a missing part, the whole model's memory


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_the_caret_sits_on_the_offending_token(path):
    source = path.read_text()
    first = [d for d in dd.check(source, file=str(path)) if d.is_error][0]
    if first.code in WHOLE_SPEC:
        return
    span = first.span
    assert span.line > 0 and span.end_line == span.line and span.end_col > span.col, first.format()
    token = source_lines(source)[span.line - 1][span.col - 1:span.end_col - 1]
    assert _on_token(first.message, token), f"caret on {token!r} for: {first.message}"


def test_the_caret_test_would_catch_an_area_wide_caret():
    message = "port 'fb' of V1 is read but never fed; it stays silent"
    assert not _on_token(message, "area V1 [4] { tau * dr/dt = -r + input + fb }")
    assert _on_token(message, "fb")
    assert _on_token("area 'L2' is defined twice (for i = 1)", "L{i + 1}")
    assert not _on_token("area 'L2' is defined twice (for i = 1)", "M{i + 1}")


# ------------------------------------------------------- warnings from compile
UNREACHED = CATALOGUE["W001"].wrong


def test_compile_issues_each_warning_as_a_dynwarning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = dd.compile(UNREACHED, file="w.dyn")
    assert model is not None
    found = [w.message for w in caught if isinstance(w.message, dd.DynWarning)]
    assert [w.diagnostic.code for w in found] == ["W001", "W002"]  # unreached, hence silent all run
    assert str(found[0]).startswith("w.dyn:1:6: warning[W001]: no connection path from 'image' reaches area V2")


def test_compile_strict_raises_on_a_warning():
    with pytest.raises(dd.DynError) as caught:
        dd.compile(UNREACHED, strict=True)
    assert [d.code for d in caught.value.errors] == ["W001", "W002"]


def test_a_clean_spec_compiles_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", dd.DynWarning)
        dd.compile(CATALOGUE["W001"].fixed, strict=True)


def test_dynv_run_prints_warnings_as_diagnostics(tmp_path, capsys):
    spec = tmp_path / "w.dyn"
    spec.write_text(UNREACHED)
    with warnings.catch_warnings():
        warnings.simplefilter("error", dd.DynWarning)  # the CLI reports them itself, never as Python warnings
        assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert f"{spec}:1:6: warning[W001]: no connection path" in capsys.readouterr().err


def test_dynv_check_and_explain_import_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dynvision_dsl.cli import main; main(['check', sys.argv[1]]); main(['explain', 'E052']); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('dynvision_dsl.lower', "
            "'dynvision_dsl.model'))), file=sys.stderr)")
    spec = HERE.parent / "specs" / "dyrcnn_x4.dyn"
    out = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"
