"""The probe layer: every spec subcommand meets every kind of bad spec file with a
one-line or located error and exit 1, never a traceback, and leaves no output.

The stage-specific probes live beside this file (test_reliability_*.py,
test_safe_literals.py); this matrix makes sure no subcommand was left out.
"""
import sys

import pytest

from dynvision_dsl.cli import main as _main

from conftest import ROOT

def main(argv) -> int:
    """The CLI's exit status as the shell sees it (SystemExit("msg") prints msg, gives 1)."""
    try:
        return _main(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        return exc.code


GOOD = (ROOT / "specs" / "dyrcnn_x2.dyn").read_text()


def _write(tmp_path, name, data):
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


BAD_SPECS = {
    "missing": None,
    "directory": "DIR",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
    "latin1": GOOD.replace("model", "# caf\xe9\nmodel", 1).encode("latin-1"),
    "nul": GOOD.replace("model", "# a\x00b\nmodel", 1),
    "empty": "",
    "garbage": "this is not a spec\n",
    "infinite": GOOD.replace("steps = ", "steps = 1e400 + ", 1) if "steps = " in GOOD else GOOD + "param x = 1e400\n",
}


def _bad(tmp_path, kind):
    data = BAD_SPECS[kind]
    if data is None:
        return tmp_path / "nope.dyn"
    if data == "DIR":
        (tmp_path / "adir.dyn").mkdir()
        return tmp_path / "adir.dyn"
    return _write(tmp_path, f"{kind}.dyn", data)


def _commands(spec, out):
    return {
        "check": ["check", spec],
        "compile": ["compile", spec, "-o", str(out / "m.py")],
        "run": ["run", spec, "--out", str(out / "run")],
        "graph": ["graph", spec, "-o", str(out / "g.svg")],
        "train": ["train", spec, "--out", str(out / "train"), "--epochs", "1", "--no-progress"],
        "experiment": ["experiment", "duration", spec, "--out", str(out / "exp")],
    }


@pytest.mark.parametrize("kind", sorted(BAD_SPECS))
@pytest.mark.parametrize("command", ["check", "compile", "run", "graph", "train", "experiment"])
def test_every_subcommand_rejects_every_bad_spec(tmp_path, capsys, command, kind):
    spec = _bad(tmp_path, kind)
    out = tmp_path / "out"
    out.mkdir()
    assert main(_commands(str(spec), out)[command]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert spec.name in captured.err, captured.err
    assert list(out.iterdir()) == []


def test_a_bom_is_accepted(tmp_path, capsys):
    spec = _write(tmp_path, "bom.dyn", "\ufeff" + GOOD)
    assert main(["check", str(spec)]) == 0
    assert "0 errors" in capsys.readouterr().out
