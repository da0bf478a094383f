"""The README's commands name only files that ship with the repository
(a newcomer copies them verbatim); what an earlier command writes is exempt."""
import re

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
OUTPUT_FLAGS = {"-o", "--output", "--out"}
FILE = re.compile(r"^[\w./-]+\.(dyn|png|jpg|jpeg|pt|py|nir|onnx)$")


def _command_inputs() -> list[str]:
    paths, written = [], set()
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split("#")[0].split()
            for before, word in zip([""] + words, words):
                if before in OUTPUT_FLAGS:
                    written.add(word)
                elif FILE.match(word) and word not in written and not word.startswith("runs/"):
                    paths.append(word)
    return paths + re.findall(r'open\("([^"]+)"\)', README)


@pytest.mark.parametrize("path", _command_inputs())
def test_readme_inputs_exist(path):
    assert (ROOT / path).is_file(), f"README names {path}, which is not in the repository"


def test_the_probe_finds_the_example_image():
    assert "docs/images/cat.png" in _command_inputs()
