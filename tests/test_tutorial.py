"""docs/tutorial.md never goes stale: its specs are the files in examples/, they check
clean and are formatted, and every command and code block runs, printing what the
page shows (decimal numbers aside)."""
import contextlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT
from dynvision_dsl.cli import main
from dynvision_dsl.tooling.fmt import format_source

TUTORIAL = ROOT / "docs" / "tutorial.md"
EXAMPLES = ROOT / "examples"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
_SLOW = ("dynv train", "dynv experiment")


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int


def blocks() -> list[Block]:
    source = TUTORIAL.read_text()
    return [Block(m.group(1), m.group(2), source.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(source)]


def spec_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "dyn"]


def _example(block: Block) -> Path:
    m = re.match(r"# (examples/\S+\.dyn)", block.text)
    assert m, f"docs/tutorial.md:{block.line}: a spec block starts with '# examples/NAME.dyn'"
    return ROOT / m.group(1)


def test_the_tutorials_specs_are_the_example_files():
    named = [_example(b) for b in spec_blocks()]
    assert len(named) == 5
    assert sorted(named) == sorted(EXAMPLES.glob("*.dyn"))  # each example is in the guide, once
    for block, path in zip(spec_blocks(), named):
        assert path.read_text() == block.text, f"docs/tutorial.md:{block.line} differs from {path.name}"


@pytest.mark.parametrize("block", spec_blocks(), ids=lambda b: _example(b).name)
def test_each_tutorial_spec_checks_clean_and_is_formatted(block):
    import dynvision_dsl

    assert dynvision_dsl.check(block.text, file=str(_example(block))) == []
    assert format_source(block.text) == block.text


# ------------------------------------------------------------ running the page
def _expect(shown: str, printed: str, where: str) -> None:
    """Every line shown must appear in what was printed; decimal numbers may differ."""
    for line in filter(None, shown.splitlines()):
        pattern = re.sub(r"\\-?\d+\\\.\d+", r"-?[0-9]+\\.[0-9]+", re.escape(line.rstrip()))
        assert re.search(pattern, printed), f"{where}: the page shows {line!r}, the run printed:\n{printed}"


def _commands(text: str) -> list[list[str]]:
    joined = text.replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in joined.splitlines() if line.startswith("dynv ")]


def _run(block: Block, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        if block.lang == "python":
            exec(compile(block.text, f"docs/tutorial.md:{block.line}", "exec"), namespace)
        else:
            for argv in _commands(block.text):
                assert main(argv) == 0, f"docs/tutorial.md:{block.line}: dynv {shlex.join(argv)} failed:\n{out.getvalue()}"
    return out.getvalue()


def _walk(tmp_path: Path, monkeypatch, slow: bool) -> int:
    """Run the page's bash and python blocks (the fast ones or the training ones) in a copy of examples/."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    printed, ran = None, 0
    for block in blocks():
        if block.lang == "text":
            if printed is not None:
                _expect(block.text, printed, f"docs/tutorial.md:{block.line}")
            continue
        printed = None
        is_slow = block.lang == "bash" and any(s in block.text for s in _SLOW)
        if block.lang in ("bash", "python") and is_slow == slow:
            printed = _run(block, namespace)
            ran += 1
    return ran


def test_the_tutorials_commands_and_code_run_and_print_what_it_shows(tmp_path, monkeypatch):
    assert _walk(tmp_path, monkeypatch, slow=False) >= 6
    assert (tmp_path / "runs" / "recurrence" / "responses.png").is_file()
    assert (tmp_path / "runs" / "recurrence-notebook.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "runs" / "feedback.svg").is_file()


@pytest.mark.slow
def test_the_tutorials_training_and_experiment_run(tmp_path, monkeypatch):
    assert _walk(tmp_path, monkeypatch, slow=True) == 2
    assert (tmp_path / "runs" / "tutorial-train" / "best.pt").is_file()
    rows = (tmp_path / "runs" / "tutorial-duration" / "duration.csv").read_text().splitlines()
    assert len(rows) > 1
