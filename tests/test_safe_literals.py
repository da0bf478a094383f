"""User text reaches generated code only as an escaped literal: file names, model
names, cited source lines (comments), module paths (`as`) and string params can
neither run code nor break the module (issue 9, security).

Each hostile string is tried through `dd.compile(source, file=...)`, through
`emit` + `compile()`/exec of the written module, and through `dynv compile`
to a file imported in a fresh interpreter. A payload that escaped its literal
would `touch pwned` in the working directory (a tmp_path), so every test
asserts that file never appears, and that the module's structure (its AST with
docstrings blanked) is the same as for a harmless name: nothing was injected.
"""
import ast
import dataclasses
import functools
import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynvision_dsl as dd
from dynvision_dsl import DynError
from dynvision_dsl.cli import main
from dynvision_dsl.render import class_name, render
from dynvision_dsl.lower import lower
from dynvision_dsl.pipeline import build
from dynvision_dsl.pycode import attr_path, comment_text, docstring_text, string_literal

from conftest import ROOT

pytestmark = pytest.mark.backend

SPEC = """\
param size = 8
param mode = "full"
time { dt = 2 ms  steps = 3 }
input image [3, size, size]
area V1 [4] { 5 ms * dr/dt = -r + input  r = relu(r) }
image -> V1 : conv(k=3) as stem.c0
readout V1 : avgpool | flatten | linear(5)
"""
NAMED = "model Net\n" + SPEC
CONV_LINE = "image -> V1 : conv(k=3) as stem.c0"
AREA_LINE = "area V1 [4] { 5 ms * dr/dt = -r + input  r = relu(r) }"
READOUT_LINE = "readout V1 : avgpool | flatten | linear(5)"

RUN = '__import__("os").system("touch pwned")'
# Each ends a literal or comment in its own way, or is a character Python's source
# reader or a UTF-8 codec chokes on.
HOSTILE = {
    "triple-double": f'a""";{RUN};"""',
    "triple-single": f"a''';__import__('os').system('touch pwned');'''",
    "newline": f"a\n{RUN}\n#",
    "crlf": f"a\r\n{RUN}\r\n#",
    "cr": f"a\r{RUN}\r#",
    "backslash-N": "a\\N",
    "backslash-x": "a\\x",
    "trailing-backslash": "a\\",
    "nul": "a\x00b",
    "u2028": f"a\u2028{RUN}",
    "formfeed": "a\x0cb",
    "surrogate": "q\udcff",
    "non-ascii": "\u210cx\u00e9\u202e",
}
IDS = list(HOSTILE)
# What may sit inside one spec comment (a newline would end it in the spec itself).
COMMENT_HOSTILE = {k: v for k, v in HOSTILE.items() if "\n" not in v}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so a payload that ran would leave tmp_path/pwned."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / "pwned").exists(), "a payload ran"


def _shape(source: str, cls: str = "") -> str:
    """The module's AST with every string constant blanked (and class `cls` renamed
    'Plain'): equal shapes mean only literal text differs, nothing was injected."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
        if isinstance(node, ast.ClassDef) and node.name == cls:
            node.name = "Plain"
    return ast.dump(tree)


def _exec(source: str) -> dict:
    namespace: dict = {"__name__": "generated_under_test"}
    exec(compile(source, "generated.py", "exec"), namespace)
    return namespace


@functools.lru_cache(maxsize=None)
def _reference(named: bool = True) -> str:
    return dd.emit(NAMED if named else SPEC, file="specs/plain.dyn")


def _doc_value(text: str) -> str:
    """What a docstring shows for `text` (lone surrogates stay written as escapes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_helpers_escape_to_one_line_of_ascii(text):
    for out in (comment_text(text), docstring_text(text), string_literal(text)):
        assert out.isascii() and out.isprintable() and "\n" not in out and "\r" not in out
    assert eval(string_literal(text)) == text  # noqa: S307 - the literal under test
    assert ast.literal_eval(f'"""{docstring_text(text)}"""') == _doc_value(text)


@pytest.mark.parametrize("path", ["stem.0", "a.b\"c", "x.\\N", "d.'''", "e.\x00", "f.\u2028g", "class.if"])
def test_attr_path_escapes_segments(path):
    class Node:
        pass

    root = Node()
    node = root
    for seg in path.split("."):
        child = Node()
        setattr(node, seg, child)
        node = child
    assert eval(attr_path(path, "root"), {"root": root}) is node  # noqa: S307
    assert attr_path(path).isascii()


# --------------------------------------------------------- file names (docstring)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_file_name_through_api_compile(text):
    model = dd.compile(NAMED, file=f"{text}.dyn")
    assert type(model).__name__ == "Net"
    assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 5)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_file_name_through_emit_and_exec(text):
    name = f"{text}.dyn"
    source = dd.emit(NAMED, file=name)
    assert source.isascii()
    assert _shape(source) == _shape(_reference())
    assert f"from {docstring_text(name)}. Do not" in source
    namespace = _exec(source)
    assert f"from {_doc_value(name)}. Do not edit" in namespace["__doc__"]
    assert namespace["Net"]().steps == 3


def test_file_given_as_a_path_still_works():
    """The escaping filters take what `file=` was given (a Path worked before them)."""
    from pathlib import Path

    source = dd.emit(NAMED, file=Path("dir") / 'x"""y.dyn')
    assert 'from dir/x\\"\\"\\"y.dyn. Do not' in source
    _exec(source)


# ------------------------------------------------- model names (class, docstrings)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_model_name_from_file_stem(text):
    """Without a `model` line the name comes from the file stem: it reaches both
    docstrings, and the class name is an ASCII identifier derived from it."""
    program, _ = build(SPEC, file=f"dir/{text}.dyn")
    name = program.model.name
    source = render(program)
    assert source.isascii()
    cls_name = class_name(name)
    assert cls_name.isascii() and cls_name.isidentifier()
    assert _shape(source, cls_name) == _shape(_reference(named=False))
    namespace = _exec(source)
    assert f"The {_doc_value(name)} model:" in namespace[cls_name].__doc__
    assert f"The {_doc_value(name)} model:" in namespace["__doc__"]
    model = dd.compile(SPEC, file=f"dir/{text}.dyn")
    assert type(model).__name__ == cls_name


def test_class_name_is_ascii_even_for_letters_python_would_normalise():
    """U+210C (script H) is an identifier letter that Python folds to 'H' (NFKC):
    the class could not be found by its unfolded name (KeyError before)."""
    assert class_name("\u210cx") == "_x"
    assert class_name("\u00e9") == "Model"
    assert type(dd.compile(SPEC, file="\u210cx.dyn")).__name__ == "_x"


# ------------------------------------------------------- comments (cited lines)
def _with_comment(text: str, line: str) -> str:
    return NAMED.replace(line, f"{line}  # {text}")


@pytest.mark.parametrize("text", COMMENT_HOSTILE.values(), ids=list(COMMENT_HOSTILE))
@pytest.mark.parametrize("line", [CONV_LINE, AREA_LINE], ids=["module-line", "equation-line"])
def test_comment_in_spec(text, line):
    if "\x00" in text:
        pytest.skip("NUL in spec text is the parser's business; see test_comment_at_emit_level")
    spec = _with_comment(text, line)
    source = dd.emit(spec, file="c.dyn")
    assert source.isascii()
    number = NAMED.split("\n").index(line) + 1
    assert f"# c.dyn:{number} (V1): {comment_text(line + '  # ' + text)}" in source  # in the step
    assert (f"# c.dyn:{number}: {comment_text(line + '  # ' + text)}" in source) == (line == CONV_LINE)  # __init__
    assert _shape(source) == _shape(_reference())
    assert f"# c.dyn:8 (readout): {READOUT_LINE}" in source  # a CR or U+2028 does not shift the lines cited
    _exec(source)
    dd.compile(spec, file="c.dyn")


@pytest.mark.parametrize("text", COMMENT_HOSTILE.values(), ids=list(COMMENT_HOSTILE))
def test_comment_at_emit_level(text):
    """Whatever the parser accepts, a source line with NUL (or anything) cited in
    a comment cannot break the module: lower and render escape it themselves."""
    program, _ = build(NAMED, file="c.dyn")
    model = dataclasses.replace(program.model, source=_with_comment(text, CONV_LINE).replace(
        AREA_LINE, f"{AREA_LINE}  # {text}"))
    source = render(lower(model, program.schedule))
    assert source.isascii() and "\x00" not in source
    assert source.count(f"  # {comment_text(text)}") >= 2
    assert _shape(source) == _shape(_reference())
    _exec(source)


# ----------------------------------------------------------- `as` module names
@pytest.mark.parametrize("bad", ['a"b', "a'b", "a\\N", 'a"""'])
def test_as_name_is_a_name_or_a_syntax_error(bad):
    with pytest.raises(DynError):
        dd.emit(NAMED.replace("as stem.c0", f"as {bad}"), file="a.dyn")


@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_module_path_is_a_literal(text):
    """Paths come from `as` names (identifiers and digits), but the emitter does not
    rely on it: a hostile path is still only a string in `_install(self, "...", ...)`."""
    program, _ = build(NAMED, file="a.dyn")
    path = f"stem.{text.replace('.', '_')}"
    program.modules[0].path = path
    source = render(program)
    assert source.isascii()
    assert f"_install(self, {string_literal(path)}, nn.Conv2d(" in source
    assert f"{path}.weight" in _exec(source)["Net"]().state_dict()


def test_digit_segments_use_getattr_with_a_literal():
    source = dd.emit(NAMED.replace("as stem.c0", "as stem.0"), file="a.dyn")
    assert 'getattr(self.stem, "0")' in source
    _exec(source)


# ----------------------------------------------------------------- string params
@pytest.mark.parametrize("text", HOSTILE.values(), ids=IDS)
def test_string_param_value_never_reaches_the_code(text):
    """String params only select variants; their value is never printed."""
    spec = NAMED + 'if mode == "full" { V1 -> V1 : scale, delay 2 ms }\n'
    source = dd.emit(spec, params={"mode": text}, file="s.dyn")
    assert source == dd.emit(spec, params={"mode": "other"}, file="s.dyn")
    dd.compile(spec, params={"mode": text}, file="s.dyn")


@pytest.mark.parametrize("where", ["conv(k=mode)", "lateral(kind=mode)", "linear(mode)"])
def test_string_param_in_a_numeric_or_enum_argument_is_an_error(where):
    spec = NAMED + f"V1 -> V1 : {where}, delay 2 ms\n"
    with pytest.raises(DynError, match="mode|must be"):
        dd.emit(spec, params={"mode": HOSTILE["triple-double"]}, file="s.dyn")


def test_string_literal_with_escapes_in_spec():
    """A spec string with quotes and backslashes, on a line the module cites."""
    spec = NAMED.replace('param mode = "full"', 'param mode = "f\\"\\"\\"\\\\N\\\\"') + \
        'V1 -> V1 : lateral(kind="self"), delay 2 ms  # "\\"\\"\\" \\N\n'
    assert dd.compile(spec, file="s.dyn").program.model.params["mode"] == 'f"""\\N\\'
    source = dd.emit(spec, file="s.dyn")
    assert source.isascii()
    assert '# s.dyn:9 (V1): V1 -> V1 : lateral(kind="self"), delay 2 ms  # "\\\\"\\\\"\\\\" \\\\N' in source
    _exec(source)


@pytest.mark.parametrize("escape", ["\\N", "\\x", "\\u", "\\'", "\\0"])
def test_unknown_string_escape_is_a_located_error(escape):
    """Strings were decoded as Python escapes: `\\N` crashed the parser with a traceback."""
    spec = NAMED.replace('param mode = "full"', f'param mode = "ab{escape}c"')
    with pytest.raises(DynError) as info:
        dd.emit(spec, file="s.dyn")
    (diag,) = info.value.diagnostics
    assert diag.message == f"unknown escape '{escape}' in a string"
    assert (diag.span.line, diag.span.col) == (3, NAMED.split("\n")[2].index('"') + 4)


def test_non_ascii_string_keeps_its_value():
    """'\u00e9' was decoded to '\u00c3\u00a9' (UTF-8 bytes read as Latin-1)."""
    spec = NAMED.replace('param mode = "full"', 'param mode = "\u00e9\\t"')
    assert dd.compile(spec, file="s.dyn").program.model.params["mode"] == "\u00e9\t"


# ------------------------------------------------------------------ area names
@pytest.mark.parametrize("bad", ['V"1', "V'1", "V\\1", "V\u00e91"])
def test_area_name_is_a_name_or_a_syntax_error(bad):
    with pytest.raises(DynError):
        dd.emit(NAMED.replace("V1", bad), file="a.dyn")


# ------------------------------------------------------------------------- CLI
_IMPORT = """
import importlib.util, json, sys
docs = {}
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("m", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docs[path] = module.__doc__
print(json.dumps(docs))
"""


def test_cli_compile_then_import_in_a_subprocess(tmp_path, capsys):
    """`dynv compile` of hostile file names (also the model name: no `model` line),
    comments and `--set` string values; every module imports in a fresh interpreter."""
    written = {}

    def compile_to(key, spec, *extra):
        out = tmp_path / f"{key}.py"
        assert main(["compile", spec.name, "-o", str(out), *extra]) == 0
        assert out.read_text().isascii()
        written[str(out)] = spec.name

    for key, text in HOSTILE.items():
        if "\x00" not in text:  # POSIX file names cannot hold NUL
            spec = tmp_path / f"{text}.dyn"
            spec.write_text(SPEC)
            compile_to(f"name-{key}", spec)
    for key, text in COMMENT_HOSTILE.items():
        # NUL is the parser's business (see test_comment_at_emit_level); the CLI reads
        # files with universal newlines, so there a lone CR ends the comment; a lone
        # surrogate has no UTF-8 form (undecodable bytes are the reader's business)
        if "\x00" not in text and "\r" not in text and "\udcff" not in text:
            spec = tmp_path / f"comment-{key}.dyn"
            spec.write_text(_with_comment(text, CONV_LINE))
            compile_to(f"comment-{key}", spec)
    spec = tmp_path / "plain.dyn"
    spec.write_text(NAMED)
    for key, text in HOSTILE.items():
        compile_to(f"set-{key}", spec, "--set", f"mode={text}")
    result = subprocess.run([sys.executable, "-c", _IMPORT, *written], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    for out, spec_name in written.items():
        assert f"from {_doc_value(spec_name)}. Do not edit" in docs[out]


MATHTEXT = "N$\\fr^{$"  # matplotlib read '$...$' in a title as mathtext and raised ParseFatalException


def test_cli_run_with_a_hostile_file_name(tmp_path, capsys):
    """The file name reaches the module and the plot's title (model name and file)."""
    spec = tmp_path / f"{HOSTILE['triple-double']}{MATHTEXT}.dyn"
    spec.write_text(SPEC)
    assert main(["run", spec.name, "--out", "out"]) == 0
    assert (tmp_path / "out" / "responses.pt").exists() and (tmp_path / "out" / "responses.png").exists()


def test_plot_titles_and_graph_labels_are_plain_text(tmp_path):
    """Model names, spec lines (equation labels) and titles are drawn as text, not mathtext."""
    from dynvision_dsl.experiment import PROTOCOLS, ExperimentResult, plot_measure, plot_timecourse
    from dynvision_dsl.plot import draw_graph
    from dynvision_dsl.science.train import EpochMetrics, plot_learning_curve

    program, _ = build(NAMED.replace("r = relu(r) }", f"r = relu(r)  # {MATHTEXT}\n}}"), file="g.dyn")
    program.graph.graph["name"] = MATHTEXT
    draw_graph(program.graph, tmp_path / "g.png", engine="matplotlib")
    result = ExperimentResult(protocol=next(iter(PROTOCOLS)), levels=[1.0], variants=["a"], areas={"a": ("V1",)},
                              dt={"a": 2.0}, title=MATHTEXT)
    plot_measure(result, "peak", tmp_path / "m.png")
    plot_timecourse(result, tmp_path / "t.png")
    rows = [EpochMetrics(1, 1.0, 0.5, 1.0, 0.5, [None, 0.5], 1.0)]
    plot_learning_curve(rows, tmp_path / "l.png", 2.0, 1, title=MATHTEXT)
    assert all((tmp_path / f"{n}.png").stat().st_size > 0 for n in "gmtl")


# ------------------------------------------------------------------------ fuzz
_TRICKY = st.sampled_from(['"""', "'''", '"', "'", "\\", "\\N", "\\x", "\\u", "\n", "\r", "\x00", "\u2028",
                           "\x0c", "\udcff", "#", ";", RUN, "{{", "}}", "{%"])
_TEXT = st.lists(st.one_of(_TRICKY, st.text(st.characters(blacklist_categories=()), max_size=6)),
                 max_size=6).map("".join)


_REFERENCE_NAMES = set(_exec(_reference(named=False)))


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_name=_TEXT, model_name=_TEXT)
def test_fuzz_file_and_model_names(file_name, model_name):
    """Any file name and any model name (the file stem, without a `model` line)
    gives a module that compiles, is ASCII, has the reference's structure, and
    runs nothing when executed."""
    program, _ = build(SPEC, file=f"{file_name}.dyn")
    program.model = dataclasses.replace(program.model, name=model_name)
    source = render(program, spec_name=file_name)
    compile(source, "x", "exec")
    assert source.isascii()
    cls_name = class_name(program.model.name)
    assert _shape(source, cls_name) == _shape(_reference(named=False))
    namespace = _exec(source)
    assert set(namespace) == _REFERENCE_NAMES - {"Plain"} | {cls_name}
    assert namespace["__doc__"].startswith(f"{cls_name}: generated by dynvision-dsl from {_doc_value(file_name)}.")
    assert not os.path.exists("pwned")
