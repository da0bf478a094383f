"""Editor support: the Pygments lexer (and its entry point) and the VS Code extension."""
import importlib.metadata
import json
import re
import tomllib

import pytest

from conftest import ROOT, SHARED, SPECS
from dynvision_dsl.check import SOLVERS
from dynvision_dsl.ops import FUNCTIONS, MATH_FUNCTIONS, OPERATORS, REDUCTIONS
from dynvision_dsl.frontend.parse import KEYWORDS

pygments = pytest.importorskip("pygments")
from pygments.token import Error, Keyword, Name, Number  # noqa: E402

from dynvision_dsl.tooling.pygments_lexer import DynLexer  # noqa: E402

CORPUS = SPECS + sorted((SHARED / "examples").glob("*.dyn")) + sorted((ROOT / "examples").glob("*.dyn"))
VSCODE = ROOT / "editors" / "vscode"
ENTRY = "dynvision_dsl.tooling.pygments_lexer:DynLexer"


# ------------------------------------------------------------------ Pygments
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_lexer_reads_every_spec_without_error_tokens(path):
    source = path.read_text()
    tokens = list(DynLexer().get_tokens(source))
    assert [t for t in tokens if t[0] is Error] == []
    assert "".join(text for _, text in tokens) == source.rstrip("\n") + "\n"


def test_the_lexer_classifies_the_languages_words():
    tokens = [t for t in DynLexer().get_tokens("area V1 [4] : leaky(tau=5 ms) { tau * dr/dt = -r + relu(input) }\n"
                                               "V1 -> V1 : conv(3), delay 2 ms\n") if t[1].strip()]
    kinds = {}
    for kind, text in tokens:
        kinds.setdefault(text, kind)  # the first occurrence of each word
    assert kinds["area"] in Keyword and kinds["V1"] is Name.Class and kinds["ms"] in Keyword
    assert kinds["5"] in Number and kinds["conv"] is Name.Builtin and kinds["relu"] is Name.Builtin
    assert kinds["delay"] in Keyword and kinds["leaky"] is Name
    assert list(DynLexer().get_tokens("@"))[0][0] is Error


def test_pyproject_registers_the_lexer_under_the_alias_dyn():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pygments.lexers"] == {"dyn": ENTRY}
    assert "dyn" in DynLexer.aliases and "*.dyn" in DynLexer.filenames
    assert {"pygments", "pygls"} <= {re.split(r"[<>=]", d)[0] for d in project["optional-dependencies"]["dev"]}


def test_the_installed_entry_point_finds_the_lexer():
    points = [e for e in importlib.metadata.entry_points(group="pygments.lexers") if e.name == "dyn"]
    if not points:
        pytest.skip("the installed distribution predates the entry point (reinstall to register it)")
    assert points[0].value == ENTRY
    from pygments.lexers import get_lexer_by_name
    assert get_lexer_by_name("dyn").name == "Dyn"


# ------------------------------------------------------------------- VS Code
def _grammar() -> dict:
    return json.loads((VSCODE / "syntaxes" / "dyn.tmLanguage.json").read_text())


def _patterns(node):
    """Every pattern of a TextMate grammar, depth first."""
    if isinstance(node, dict):
        if "match" in node:
            yield node
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def _words(pattern: str) -> set[str]:
    m = re.search(r"\(((?:[a-z_0-9]+\|)*[a-z_0-9]+)\)", pattern)
    return set(m.group(1).split("|")) if m else set()


def test_the_extension_is_a_valid_local_extension():
    package = json.loads((VSCODE / "package.json").read_text())
    assert {"name", "publisher", "version", "engines"} <= set(package)
    (lang,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert lang["extensions"] == [".dyn"] and grammar["language"] == lang["id"] == "dyn"
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / lang["configuration"]).is_file()
    config = json.loads((VSCODE / lang["configuration"]).read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in config["brackets"] and ["(", ")"] in config["brackets"]
    start, end = re.compile(config["folding"]["markers"]["start"]), re.compile(config["folding"]["markers"]["end"])
    assert start.match("area V1 [4] {  # body") and end.match("  }") and not start.match("area V1 [4]")


def test_the_grammars_word_lists_are_the_compilers_tables():
    grammar = _grammar()
    assert grammar["scopeName"] == "source.dyn"
    keywords = set().union(*(_words(p["match"]) for p in _patterns(grammar["repository"]["keyword"])))
    assert keywords == set(KEYWORDS)
    builtins = [_words(p["match"]) for p in _patterns(grammar["repository"]["builtin"])]
    assert builtins == [set(OPERATORS), set(FUNCTIONS) | set(MATH_FUNCTIONS) | set(REDUCTIONS), set(SOLVERS)]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_grammar_compiles_and_covers_every_character_of_a_spec(path):
    """Python's `re` reads these patterns as Oniguruma does; scanning each line with the
    top-level rules in order must leave no character outside a rule but spaces."""
    grammar = _grammar()
    rules = [re.compile(p["match"]) for name in [i["include"][1:] for i in grammar["patterns"]]
             for p in _patterns(grammar["repository"][name])]
    for line in path.read_text().splitlines():
        pos = 0
        while pos < len(line):
            if line[pos] in " \t":
                pos += 1
                continue
            m = next((m for r in rules if (m := r.match(line, pos)) and m.end() > pos), None)
            assert m is not None, f"{path.name}: nothing matches {line[pos:]!r}"
            pos = m.end()
