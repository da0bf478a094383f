"""The `dynv` command line: exit codes, messages and files."""
import subprocess
import sys

import pytest
import torch

from dynvision_dsl.cli import main

from conftest import ROOT

X4 = str(ROOT / "specs" / "dyrcnn_x4.dyn")
BAD = """model Bad
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
area V1 [2] { r = relu(input) }
image -> V1 : conv(3)
V1 -> V2 : conv(3)
readout V1 : avgpool | linear(2)
"""


def test_check_ok(capsys):
    assert main(["check", X4]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_check_reports_location_and_exits_1(tmp_path, capsys):
    spec = tmp_path / "bad.dyn"
    spec.write_text(BAD)
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:7: error[E054]: unknown area 'V2' (did you mean 'V1'?)" in err
    assert "V1 -> V2 : conv(3)" in err and "^" in err


def test_check_strict_fails_on_warnings(tmp_path):
    spec = tmp_path / "warn.dyn"
    spec.write_text(BAD.replace("V1 -> V2 : conv(3)\n", "area V2 [2, 8, 8] { port fb  r = relu(fb) }\n"
                                                       "V2 -> V2.fb : conv(3), delay 1 ms\n"))
    assert main(["check", str(spec)]) == 0
    assert main(["check", "--strict", str(spec)]) == 1


def test_check_with_set_override(capsys):
    assert main(["check", X4, "--set", "recurence=self"]) == 1
    assert "did you mean 'recurrence'" in capsys.readouterr().err


def test_compile_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "x4.py"
    assert main(["compile", X4, "-o", str(out), "--set", "size=16"]) == 0
    text = out.read_text()
    assert "class DyRCNNx4(nn.Module)" in text and "input_shape = (3, 16, 16)" in text
    out.write_text("# mine\n")
    assert main(["compile", X4, "-o", str(out)]) == 1
    assert out.read_text() == "# mine\n"
    assert "--force" in capsys.readouterr().err
    assert main(["compile", X4, "-o", str(out), "--force"]) == 0


def test_compile_error_exit_code(tmp_path, capsys):
    spec = tmp_path / "bad.dyn"
    spec.write_text(BAD)
    assert main(["compile", str(spec), "-o", str(tmp_path / "o.py")]) == 1
    assert "1 error" in capsys.readouterr().err
    assert not (tmp_path / "o.py").exists()


def test_missing_file_is_a_clear_error(capsys):
    assert main(["check", "nope.dyn"]) == 1  # a DynError naming the file, like any other spec error
    assert "nope.dyn: error[E010]: no such file" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "dynvision_dsl.cli", "check", X4], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
