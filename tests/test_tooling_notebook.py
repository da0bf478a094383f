"""Notebooks: a run's results plot with one call; the frontend and `dynv` start without torch."""
import os
import subprocess
import sys

import pytest
import torch

import dynvision_dsl
from conftest import ROOT

SPEC = """model Slow
time { dt = 2 ms  steps = 6  idle = 2 }
input image [1, 8, 8]
area V1 [2] { 4 ms * dr/dt = -r + input }
image -> V1 : conv(3)
V1 -> V1 : conv(3), delay 4 ms
readout V1 : avgpool | linear(3)
"""


def test_a_run_plots_with_one_call_inline_or_to_a_file(tmp_path):
    result = dynvision_dsl.compile(SPEC).run(torch.rand(1, 1, 8, 8))
    assert (result.dt, result.idle) == (2.0, 2)  # the time axis and the shaded idle steps come along
    inline = result.plot()
    assert inline._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    path = result.plot(tmp_path / "run.png", title="Slow")
    assert path == tmp_path / "run.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert inline.save(tmp_path / "inline.png").read_bytes() == inline.data
    with pytest.raises(ValueError, match="writes a .png file"):
        result.plot(tmp_path / "run.svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inline.png", "run.png"]


def test_the_checkers_table_of_module_attributes_covers_the_installed_torch():
    from torch import nn

    from dynvision_dsl.check import MODULE_ATTRIBUTES
    public = {n for n in set(dir(nn.Module())) | set(dir(dynvision_dsl.DynModel)) if not n.startswith("_")}
    assert public - MODULE_ATTRIBUTES == set()


@pytest.mark.parametrize("argv", [["check", "specs/dyrcnn_x4.dyn"], ["fmt", "--check", "specs/alexnet.dyn"]])
def test_dynv_check_and_fmt_never_import_torch(argv):
    code = ("import sys; from dynvision_dsl.cli import main; main(sys.argv[1:]); "
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "False", out.stderr
