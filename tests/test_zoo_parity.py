"""Zoo specs against DynVision 0.1.0, on the project's own compact fixtures.

tests/fixtures/*.pt hold no weights and no inputs (benchmarks/reference/
make_fixtures.py writes them with the reference installed): the state dict is
re-drawn here with tests/fixture_weights.draw from the stored key shapes and
seed, the 0-d entries (tau, supralinearity, n_residual_timesteps) come from
the fixture, and the `local` index buffers from the compiled model itself.
A spec that does not exist yet is skipped. The shared fixtures beside the
repository (../shared/fixtures/dynvision) are replayed too where present.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dynvision_dsl
from conftest import SHARED as SHARED_ROOT
from fixture_weights import draw, make_input

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*.pt"))
SHARED = SHARED_ROOT / "fixtures" / "dynvision"  # beside the repository, absent in a user's clone
SHARED_DYRCNN = ("x2_full.pt", "x4_full.pt", "x4_self_noskip_tff2.pt", "x4_depthpointwise_fbadd.pt", "x8_output.pt")
SPEC = {"DyRCNNx2": "dyrcnn_x2", "DyRCNNx4": "dyrcnn_x4", "DyRCNNx8": "dyrcnn_x8",
        "CorNetRT": "cornet_rt", "CordsNet": "cordsnet"}
ATOL, RTOL = 1e-5, 1e-4


def _compile(model: str, input_shape, dsl_params: dict):
    spec = ROOT / "specs" / f"{SPEC[model]}.dyn"
    if not spec.exists():
        pytest.skip(f"{spec.relative_to(ROOT)} does not exist yet")
    _, steps, _, size, _ = input_shape
    params = {"size": size, "steps": steps, "classes": 10, **dsl_params}
    return dynvision_dsl.compile(spec.read_text(), params)


def _compare(m, state_dict, x, expected, name):
    m.load_dynvision(dict(state_dict))
    m.eval()
    with torch.no_grad():
        y = m(x)
    assert y.shape == expected.shape, f"{name}: logits {tuple(y.shape)}, expected {tuple(expected.shape)}"
    for t in range(expected.shape[1]):
        err = (y[:, t] - expected[:, t]).abs().max().item()
        assert torch.allclose(y[:, t], expected[:, t], atol=ATOL, rtol=RTOL), \
            f"{name}: step {t} differs from DynVision 0.1.0 by {err:.3g}"


SLOW = {"cordsnet_default"}  # 100 idle steps


@pytest.fixture(autouse=True)
def _flush_denormals():
    """CordsNet's 100 idle steps drive activity into float32 denormals, which make
    CPU convolutions ~20x slower; flushing them to zero is far below the tolerance."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
                                  for p in FIXTURES])
def test_zoo_matches_reference(path):
    fx = torch.load(path, weights_only=False)
    m = _compile(fx["model"], fx["input_shape"], fx["dsl_params"])
    sd = draw(fx["shapes"], fx["seed"])
    for key, value in fx["scalars"].items():
        sd[key] = torch.tensor(value, dtype=torch.int32 if isinstance(value, int) else torch.float32)
    for key, value in m.state_dict().items():  # `local` index buffers: deterministic, rebuilt by the spec
        if key not in sd and not value.is_floating_point():
            sd[key] = value
    _compare(m, sd, make_input(fx["input_shape"], fx["seed"]), fx["output"], path.stem)


@pytest.mark.parametrize("name", SHARED_DYRCNN)
def test_zoo_matches_shared_fixture(name):
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not available (it ships beside the repository, not inside it)")
    fx = torch.load(SHARED / name, weights_only=False)
    meta = fx["meta"]
    T, C, H, W = meta["input_dims"]
    m = _compile(meta["model"], (meta["batch"], T, C, H, W), meta["dsl_params"])
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in fx["state_dict"].items()}
    _compare(m, sd, fx["input"], fx["output"], name)
