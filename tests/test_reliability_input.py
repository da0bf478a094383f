"""Spec input and resource bounds (issue 9): every bad spec file or value is a clear, located
error from every subcommand and from the API, with exit code 1, no traceback, and no output.

Each probe writes a spec (or something in its place) and names the message and where it
points; every subcommand that reads a spec must answer it the same way."""
import math
import re
import time
from pathlib import Path

import pytest

import dynvision_dsl as dd
from dynvision_dsl import DynError
from dynvision_dsl.bounds import buffer_bytes, resource_diagnostics, step_bytes, weight_bytes
from dynvision_dsl.check import check_module
from dynvision_dsl.cli import main
from dynvision_dsl.frontend.parse import parse
from dynvision_dsl.schedule import build_schedule

pytestmark = pytest.mark.frontend

SPEC = """model Small
param tau = TAU
param gain = GAIN
param t_fb = DELAY
param size = SIZE
param ch = CH
param steps = STEPS
time {
  dt = DT
  steps = steps
}
input image [1, size, size]
area V1 [ch, size, size] { tau * dr/dt = -r + input + fb  r = relu(r) * gain }
image -> V1 : conv(K)
V1 -> V1.fb : conv(3), delay t_fb
readout V1 : avgpool | linear(2)
"""
DEFAULTS = dict(TAU="5 ms", GAIN="1", DELAY="2 ms", SIZE="8", CH="2", STEPS="4", DT="1 ms", K="3")
BOM = b"\xef\xbb\xbf"


def _sparse_file(path: Path, size: int = 17 * 2**20) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)


def spec(**kw) -> str:
    text = SPEC
    for key, value in {**DEFAULTS, **kw}.items():
        text = text.replace(key, value)
    return text


# (id, bytes of the file or a callable making the path, message, location: "" for the file, or "line:col")
PROBES = [
    ("missing", None, "no such file", ""),
    ("directory", lambda p: p.mkdir(), "this is a directory, not a .dyn spec", ""),
    ("huge_file", _sparse_file, "the file is 17 MB; a spec is a small text file (at most 16 MB)", ""),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" + bytes(range(256)), "this is a binary file", ""),
    ("latin1", spec().replace("model Small", "# caf\xe9\nmodel Small").encode("latin-1"),
     "byte 0xe9 is not UTF-8 text", "1:6"),
    ("utf16", spec().encode("utf-16"), "the file is UTF-16 text; a spec must be UTF-8", ""),
    ("utf16_no_bom", spec().encode("utf-16-le"), "the file is UTF-16 text", ""),
    ("nul_in_comment", spec().replace("model Small", "# a\x00b\nmodel Small").encode(),
     "a NUL character (\\0) is not allowed in a spec", "1:4"),
    ("nul_in_code", spec(STEPS="1\x000").encode(), "a NUL character (\\0) is not allowed in a spec", "7:16"),
    ("bom_then_error", BOM + spec(TAU="1e400 ms").encode(), "the number '1e400 ms' is too large", "2:13"),
    ("steps_1e400", spec(STEPS="1e400").encode(), "the number '1e400' is too large", "7:15"),
    ("channels_1e400", spec(CH="1e400").encode(), "the number '1e400' is too large", "6:12"),
    ("size_1e400", spec(SIZE="1e400").encode(), "the number '1e400' is too large", "5:14"),
    ("delay_1e400", spec(DELAY="1e400 ms").encode(), "the number '1e400 ms' is too large", "4:14"),
    ("dt_1e400", spec(DT="1e400 ms").encode(), "the number '1e400 ms' is too large", "9:8"),
    ("kernel_1e400", spec(K="1e400").encode(), "the number '1e400' is too large", "14:20"),
    ("tau_1e400", spec(TAU="1e400 ms").encode(), "the number '1e400 ms' is too large", "2:13"),
    ("tau_overflow", spec(TAU="1e200 ms * 1e200").encode(), "'1e200 ms * 1e200' overflows", "2:13"),
    ("steps_power_overflow", spec(STEPS="10 ^ 400").encode(), "'10 ^ 400' overflows", "7:15"),
    ("inf_name", spec(GAIN="inf").encode(), "'inf' is not a number in a spec", "3:14"),
    ("nan_name", spec(TAU="nan * 1 ms").encode(), "'nan' is not a number in a spec", "2:13"),
    ("inf_in_equation", spec().replace("* gain", "* inf").encode(), "'inf' is not a number in a spec", "13:73"),
    ("equation_1e400", spec().replace("* gain", "* 1e400").encode(), "the number '1e400' is too large", "13:73"),
    ("equation_beyond_float32", spec(GAIN="1e39").encode(), "beyond the float32 range", "13:73"),
    ("equation_overflow", spec().replace("* gain", "* (1e30 * 1e30)").encode(), "'1e30 * 1e30' is 1e+60, beyond the float32",
     "13:74"),
    ("equation_negative_root", spec().replace("* gain", "* (-8) ^ 0.5").encode(), "has no finite real value", "13:73"),
    ("equation_zero_to_negative", spec().replace("* gain", "* 0 ^ -1").encode(), "has no finite real value", "13:73"),
    ("dt_beyond_float32", spec(DT="1e300 ms").encode(), "'1e300 ms' is 1e+300, beyond the float32 range", "9:8"),
    ("tau_tiny", spec(TAU="1e-40 ms").encode(), "dt / 'tau' is 1e+40, beyond the float32 range", "13:28"),
    ("dt_tiny", spec(DT="1e-320 ms").encode(), "more than the 1000000 a delay buffer may hold", "15:30"),
    ("delay_1e9", spec(DELAY="1e9 ms").encode(), "delay 't_fb' is 1000000000 steps of dt = 1 ms", "15:30"),
    ("steps_1e9", spec(STEPS="1e9").encode(), "a run of 1000000000 steps is more than the 1000000", "10:11"),
    ("size_huge", spec(SIZE="100000000").encode(), "per batch item (states, area outputs, delay buffers and", "13:1"),
    ("channels_huge", spec(CH="10000000000000").encode(), "the weights of 'V1 -> V1.fb' need about", "15:1"),
    ("kernel_huge", spec(K="100000001").encode(), "the weights of 'image -> V1' need about", "14:1"),
    ("delay_buffers", spec(CH="1024", SIZE="256", DELAY="1000 s").encode(), "the delay buffers need about 244.1 TB",
     "15:1"),
]
COMMANDS = {
    "check": lambda f, out: ["check", f],
    "compile": lambda f, out: ["compile", f, "-o", str(out / "model.py")],
    "graph": lambda f, out: ["graph", f, "-o", str(out / "graph.svg")],
    "run": lambda f, out: ["run", f, "--out", str(out / "run")],
    "train": lambda f, out: ["train", f, "--out", str(out / "train"), "--no-progress", "--epochs", "1"],
    "experiment": lambda f, out: ["experiment", "duration", f, "--out", str(out / "exp")],
}


def _make(tmp_path: Path, content) -> Path:
    path = tmp_path / "spec.dyn"
    if callable(content):
        content(path)
    elif content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("name, content, message, where", PROBES, ids=[p[0] for p in PROBES])
def test_every_command_answers_a_bad_spec_with_a_located_error(tmp_path, capsys, command, name, content, message,
                                                              where):
    path = _make(tmp_path, content)
    out = tmp_path / "out"
    out.mkdir()
    assert main(COMMANDS[command](str(path), out)) == 1
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    head = f"{path}:{where}: error[" if where else f"{path}: error["
    line = next((ln for ln in text.splitlines() if ln.startswith(head) and re.match(r"E\d{3}\]: ", ln[len(head):])), None)
    assert line is not None, f"no line starting {head!r} in:\n{text}"
    assert message in line
    assert "hint:" in text or name.startswith(("equation_negative", "equation_zero")), text
    assert list(out.iterdir()) == [], "a failed command left output behind"


@pytest.mark.parametrize("name, content, message, where", PROBES, ids=[p[0] for p in PROBES])
def test_the_api_raises_the_same_error(tmp_path, name, content, message, where):
    path = _make(tmp_path, content)
    with pytest.raises(DynError) as caught:
        dd.compile(path)
    first = caught.value.errors[0]
    assert message in first.message
    assert first.span.file == str(path)
    assert (f"{first.span.line}:{first.span.col}" if where else "") == where
    assert [d for d in dd.check(path) if d.is_error][0] == first  # check returns what compile raises


def test_a_bom_is_stripped_and_columns_stay_right(tmp_path):
    path = tmp_path / "bom.dyn"
    path.write_bytes(BOM + spec().encode())
    assert dd.check(path) == []
    assert "\ufeff" not in dd.emit(path)
    text_error = [d for d in dd.check("\ufeff" + spec(GAIN="1e400")) if d.is_error][0]
    assert (text_error.span.line, text_error.span.col) == (3, 14)


def test_a_nul_never_reaches_generated_code():
    with pytest.raises(DynError, match="NUL"):
        dd.emit(spec().replace("model Small", "# comment\x00\nmodel Small"))


def test_a_missing_spec_suggests_a_close_name(tmp_path, capsys):
    (tmp_path / "dyrcnn_x4.dyn").write_text(spec())
    assert main(["check", str(tmp_path / "dyrcnn_x5.dyn")]) == 1
    assert f"hint: did you mean {tmp_path / 'dyrcnn_x4.dyn'}?" in capsys.readouterr().err


def test_a_directory_names_specs_inside_it(tmp_path, capsys):
    (tmp_path / "a.dyn").write_text(spec())
    assert main(["check", str(tmp_path)]) == 1
    assert f"name a spec inside it, e.g. {tmp_path / 'a.dyn'}" in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [
    ("1e400 ms", "--set tau=1e400 ms: error[E026]: cannot read the value '1e400 ms': the number '1e400 ms' is too large"),
    ("inf", "--set tau=inf: error[E026]: cannot read the value 'inf': 'inf' is not a number in a spec"),
    ("nan", "--set tau=nan: error[E026]: cannot read the value 'nan': 'nan' is not a number in a spec"),
    ("1e300 ms * 1e300", "--set tau=1e300 ms * 1e300: error[E026]: cannot read the value '1e300 ms * 1e300': "
                         "'1e300 ms * 1e300' overflows"),
])
def test_a_non_finite_set_value_is_an_error_naming_it(tmp_path, capsys, value, message):
    path = tmp_path / "s.dyn"
    path.write_text(spec())
    assert main(["check", str(path), "--set", f"tau={value}"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_api_param_is_an_error(value):
    with pytest.raises(DynError, match=r"params=\{'gain': .*\}: error\[E026\]: the value '.*' is not a finite number"):
        dd.compile(spec(), params={"gain": value})


def test_a_set_value_that_exceeds_memory_is_refused_with_a_hint():
    errors = [d for d in dd.check(spec(), params={"size": "100000000"}) if d.is_error]
    assert len(errors) == 1 and "needs about" in errors[0].message
    assert errors[0].hint.startswith("lower it with --set size=")
    hinted = int(errors[0].hint.rsplit("=", 1)[1])
    assert [d for d in dd.check(spec(), params={"size": str(hinted)}) if d.is_error] == []


def test_a_delay_that_exceeds_memory_hints_at_a_delay_that_fits():
    model, _ = check_module(parse(spec(CH="64", SIZE="64", DELAY="100000 ms")), {}, memory=2**50)
    assert model is not None
    (error,) = resource_diagnostics(model, memory=10 * 2**30)
    assert error.message.startswith("the delay buffers need about 97.7 GB per batch item; this machine has 10.0 GB")
    assert error.hint == "shorten it, e.g. --set t_fb=5100 ms"  # half the memory: 5120 steps of 1 MB, rounded down
    fits, diags = check_module(parse(spec(CH="64", SIZE="64", DELAY="5100 ms")), {}, memory=10 * 2**30)
    assert fits is not None and diags == []


def test_the_estimate_counts_states_outputs_buffers_and_logits():
    model, _ = check_module(parse(spec(CH="2", SIZE="8", DELAY="3 ms", STEPS="5")), {})
    ((_, buffered),) = buffer_bytes(model)
    assert buffered == 3 * 2 * 8 * 8 * 4  # V1's output kept for 3 steps
    # V1: its state r (also the output); two conv results of [2, 8, 8]; 5 steps of 2 logits
    assert step_bytes(model) == (2 * 8 * 8 + 2 * (2 * 8 * 8) + 5 * 2) * 4
    # conv(3) 1 -> 2 and 2 -> 2 channels with biases; the readout's linear 2 -> 2 with bias
    assert [b for _, b in weight_bytes(model)] == [(1 * 2 * 9 + 2) * 4, (2 * 2 * 9 + 2) * 4, (2 + 1) * 2 * 4]


def test_a_long_delay_is_analysed_without_a_loop_over_its_steps():
    model, _ = check_module(parse(spec(DELAY="900000 ms", STEPS="1000000", SIZE="1", CH="1")), {})
    start = time.perf_counter()
    schedule = build_schedule(model)
    elapsed = time.perf_counter() - start
    fb = next(c for c in model.conns if c.port == "fb")
    assert schedule.present_from["V1"] == 0
    assert schedule.term_present_from[fb.index] == 900000  # V1 is present from step 0, read 900000 steps later
    assert schedule.variant(10) != schedule.variant(900000) == schedule.steady
    assert elapsed < 5, f"the schedule took {elapsed:.1f} s: it iterates over delay steps"
