"""Stage 6: the standalone module. generated/ is current, imports only torch,
and runs exactly like the in-process model."""
import importlib.util
import re

import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.render import render
from dynvision_dsl.util.files import write_atomic
from dynvision_dsl.pipeline import build

from conftest import ROOT, SPECS

pytestmark = pytest.mark.backend

REGEN = "for f in specs/*.dyn; do dynv compile $f -o generated/$(basename $f .dyn).py --force; done"


def _render(spec):
    program, _ = build(spec.read_text(), file=f"specs/{spec.name}")
    return render(program, spec_name=f"specs/{spec.name}")


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_generated_is_current(spec):
    target = ROOT / "generated" / f"{spec.stem}.py"
    assert target.exists(), f"generated/{spec.stem}.py is missing; run: {REGEN}"
    assert target.read_text() == _render(spec), f"generated/{spec.stem}.py is stale; run: {REGEN}"


def test_every_generated_module_has_a_spec():
    stems = {s.stem for s in SPECS}
    extra = [p.name for p in (ROOT / "generated").glob("*.py") if p.stem not in stems]
    assert not extra, f"generated modules without a spec: {extra}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_generated_imports_only_torch(spec):
    text = (ROOT / "generated" / f"{spec.stem}.py").read_text()
    imports = re.findall(r"^(?:import|from) (\w+)", text, re.M)
    assert set(imports) <= {"torch", "math", "typing", "contextlib"}, imports  # torch and the standard library
    local = set(re.findall(r"^[ \t]+(?:import|from) (\w+)", text, re.M))
    assert local <= {"numpy", "concurrent"}, local
    assert ("import numpy" in text) == ("needs only torch (and numpy" in text.lower())


def test_large_layers_draw_torch_default_distribution_in_parallel():
    """parallel_init: U(+-1/sqrt(fan_in)) like torch, reproducible under manual_seed and
    independent of the thread count; only layers of >= 1M weights use it."""
    import torch
    from torch import nn

    from dynvision_dsl.layers import parallel_init

    threads = torch.get_num_threads()
    try:
        draws = []
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(5)
            draws.append(parallel_init(nn.Linear, 1500, 1000))
    finally:
        torch.set_num_threads(threads)
    a, b = draws
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    bound = 1 / 1500 ** 0.5
    w = a.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(float(w.mean())) < 1e-3 * bound * 10 and abs(float(w.std()) - bound / 3 ** 0.5) < 0.01 * bound
    torch.manual_seed(6)
    assert not torch.equal(parallel_init(nn.Linear, 1500, 1000).weight, a.weight)
    conv = parallel_init(nn.Conv2d, 256, 512, kernel_size=3, padding=1, groups=2)
    assert conv.weight.abs().max() <= 1 / (128 * 9) ** 0.5
    text = (ROOT / "generated" / "alexnet.py").read_text()
    assert 'parallel_init(nn.Linear, 9216, 4096)' in text and 'parallel_init(nn.Conv2d' not in text


def test_render_is_deterministic():
    spec = SPECS[0]
    assert _render(spec) == _render(spec)


SMALL = {"dyrcnn_x4": {"size": 16, "steps": 6}, "alexnet": {"size": 64, "steps": 2}}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_emitted_and_in_process_agree(spec, tmp_path):
    params = SMALL.get(spec.stem, {"size": 32, "steps": 4})
    program, _ = build(spec.read_text(), params, file=f"specs/{spec.name}")
    path = tmp_path / f"{spec.stem}_small.py"
    write_atomic(path, render(program))
    standalone = getattr(_load(path), re.findall(r"^class (\w+)\(nn.Module\)", path.read_text(), re.M)[-1])()
    model = dd.compile(spec.read_text(), params)
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    standalone.load_state_dict(model.state_dict(), strict=True)
    assert list(standalone.state_dict()) == list(model.state_dict())
    x = torch.rand(2, *model.input_shape)
    standalone.eval(), model.eval()  # dropout
    with torch.no_grad():
        assert torch.equal(standalone(x), model(x))


def test_write_atomic_refuses_to_overwrite(tmp_path):
    path = tmp_path / "m.py"
    write_atomic(path, "a = 1\n")
    with pytest.raises(FileExistsError, match="--force"):
        write_atomic(path, "a = 2\n")
    assert path.read_text() == "a = 1\n"
    write_atomic(path, "a = 2\n", overwrite=True)
    assert path.read_text() == "a = 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]
