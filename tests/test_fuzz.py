"""Mutated valid specs never crash the compiler: `compile` either succeeds or
raises DynError, the DSL's own error type, never anything else.

The seeds are the shared examples (../shared/examples, when present) or the
project's specs/*.dyn. Each example applies one to three random edits: delete,
duplicate or swap a token or a line, replace a number with another number or
a name, insert a punctuation character, rename an identifier (everywhere or
once). Edits that usually keep the syntax are drawn twice as often. Derandomized,
so a run is the same on every machine; only compiled, never run.

Mutants are compiled on the meta device: every stage runs, modules included,
but no weights are allocated, so an edit that turns `stride=2` into `1` ahead
of `flatten | linear(4096)` cannot ask CI for gigabytes.
"""
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynvision_dsl
from dynvision_dsl import DynError
from conftest import SHARED

pytestmark = pytest.mark.frontend

HERE = Path(__file__).resolve().parent
SHARED_EXAMPLES = SHARED / "examples"  # beside the repository, absent in a user's clone
SEEDS = sorted(SHARED_EXAMPLES.glob("*.dyn")) or sorted((HERE.parent / "specs").glob("*.dyn"))

# Whitespace and comments are tokens too, so joining the tokens gives the text back.
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|[A-Za-z_]\w*'
                   r'|->|==|!=|<=|>=|#[^\n]*|\s+|.', re.S)
NAME = re.compile(r"[A-Za-z_]\w*")
NUMBERS = ("0", "1", "2", "3", "4", "7", "16", "0.5", "2.5", "1e-3", "0.0", "33")
NAMES = ("tau", "r", "input", "image", "V1", "V2", "dt", "steps", "foo", "ms", "s", "true", "if", "area", "conv",
         "delay", "fb", "state", "relu", "none", "forward", "bias")
PLAIN_NAMES = ("tau", "r", "a", "input", "image", "V1", "V2", "V4", "IT", "dt", "steps", "size", "foo", "fb", "relu",
               "conv", "adapt", "forward", "bias", "full", "self", "local", "euler", "exponential", "leaky", "x")
KEYWORDS = frozenset(("model", "time", "param", "input", "readout", "area", "dynamics", "state", "output", "solver",
                      "if", "else", "delay", "as", "trainable", "true", "false", "and", "or", "not", "ms", "s"))
PUNCTUATION = tuple("{}[]()<>=+-*/^,.:;|!@$%&\"'#\\")


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _significant(toks: list[str]) -> list[int]:
    return [i for i, t in enumerate(toks) if t.strip() and not t.startswith("#")]


def _with(toks: list[str], i: int, new: str) -> str:
    return "".join(toks[:i] + [new] + toks[i + 1:])


def _swapped(items: list[str], i: int, j: int, sep: str) -> str:
    items = list(items)
    items[i], items[j] = items[j], items[i]
    return sep.join(items)


def _token_edits(toks: list[str]) -> list:
    sig = _significant(toks)
    pairs = list(zip(sig, sig[1:]))
    numbers = [i for i in sig if toks[i][0].isdigit()]
    names = sorted({toks[i] for i in sig if NAME.fullmatch(toks[i])})
    edits = [
        st.sampled_from(sig).map(lambda i: _with(toks, i, "")),
        st.sampled_from(sig).map(lambda i: _with(toks, i, f"{toks[i]} {toks[i]}")),
        st.sampled_from(pairs).map(lambda p: _with(toks[:p[0]] + [toks[p[1]]] + toks[p[0] + 1:], p[1], toks[p[0]])),
        st.tuples(st.integers(0, len(toks)), st.sampled_from(PUNCTUATION)).map(
            lambda a: "".join(toks[:a[0]] + [a[1]] + toks[a[0]:])),
    ]
    # edits that usually keep the syntax count twice, so the checker's later stages see enough examples
    rename = st.tuples(st.sampled_from(names), st.sampled_from(NAMES + tuple(names))).map(
        lambda a: "".join(a[1] if t == a[0] else t for t in toks))
    rename_one = st.tuples(st.sampled_from([i for i in sig if NAME.fullmatch(toks[i])]),
                           st.sampled_from(NAMES + tuple(names))).map(lambda a: _with(toks, *a))
    edits += [rename, rename, rename_one]
    if numbers:
        renumber = st.tuples(st.sampled_from(numbers), st.sampled_from(NUMBERS)).map(lambda a: _with(toks, *a))
        edits += [renumber, renumber,
                  st.tuples(st.sampled_from(numbers), st.sampled_from(NAMES)).map(lambda a: _with(toks, *a))]
    return edits


def _line_edits(text: str) -> list:
    lines = text.split("\n")
    index = st.integers(0, len(lines) - 1)
    edits = [
        index.map(lambda i: "\n".join(lines[:i] + lines[i + 1:])),
        index.map(lambda i: "\n".join(lines[:i + 1] + lines[i:])),
        st.tuples(index, index).map(lambda p: _swapped(lines, p[0], p[1], "\n")),
    ]
    return edits + edits


def _value_edits(toks: list[str]) -> list:
    """Edits that keep the syntax: numbers and names (not keywords) replaced."""
    sig = _significant(toks)
    names = sorted({toks[i] for i in sig if NAME.fullmatch(toks[i]) and toks[i] not in KEYWORDS})
    where = [i for i in sig if toks[i] in names]
    numbers = [i for i in sig if toks[i][0].isdigit()]
    pool = st.sampled_from(PLAIN_NAMES + tuple(names))
    edits = [st.tuples(st.sampled_from(names), pool).map(lambda a: "".join(a[1] if t == a[0] else t for t in toks)),
             st.tuples(st.sampled_from(where), pool).map(lambda a: _with(toks, *a))]
    if numbers:
        edits += [st.tuples(st.sampled_from(numbers), st.sampled_from(NUMBERS)).map(lambda a: _with(toks, *a))] * 2
    return edits


def mutation(text: str):
    """A strategy for `text` with one random edit."""
    return st.one_of(_token_edits(_tokens(text)) + _line_edits(text))


def value_mutation(text: str):
    return st.one_of(_value_edits(_tokens(text)))


@st.composite
def mutated(draw, seed: Path, edit=mutation) -> str:
    text = seed.read_text()
    for _ in range(draw(st.integers(1, 3))):
        text = draw(edit(text))
    return text


def compiles_or_raises_dynerror(text: str, file: str) -> None:
    try:
        with torch.device("meta"):
            dynvision_dsl.compile(text, file=file)
    except DynError as exc:
        assert exc.errors, "a DynError carries at least one error"


def test_there_are_seeds():
    assert SEEDS, "no valid spec to mutate"


def test_the_tokenizer_gives_the_text_back():
    for seed in SEEDS:
        text = seed.read_text()
        assert "".join(_tokens(text)) == text


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
def test_an_unmutated_seed_compiles(seed):
    with torch.device("meta"):
        model = dynvision_dsl.compile(seed.read_text(), file=str(seed))
    assert next(model.parameters()).is_meta


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_mutated_spec_compiles_or_raises_dynerror(seed, data):
    compiles_or_raises_dynerror(data.draw(mutated(seed), label="spec"), seed.name)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_spec_with_other_numbers_and_names_compiles_or_raises_dynerror(seed, data):
    """Edits that keep the syntax reach the checker and the back end (most edits above stop at the parser)."""
    compiles_or_raises_dynerror(data.draw(mutated(seed, value_mutation), label="spec"), seed.name)
