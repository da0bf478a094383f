"""The public API end to end: shapes, static images, recordings, devices, autograd."""
import pytest
import torch

import dynvision_dsl as dd

from conftest import ROOT

pytestmark = pytest.mark.backend

X4 = (ROOT / "specs" / "dyrcnn_x4.dyn").read_text()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return dd.compile(X4, {"size": 16, "steps": 5})


def test_attributes(model):
    assert model.input_shape == (3, 16, 16)
    assert model.steps == 5 and model.classes == 10
    assert "def _step_" in model.code
    assert isinstance(model, dd.DynModel) and isinstance(model, torch.nn.Module)


def test_static_image_equals_repeated_frames(model):
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        a = model(x)
        b = model(x.unsqueeze(1).expand(-1, 5, -1, -1, -1))
    assert a.shape == (2, 5, 10)
    assert torch.equal(a, b)


def test_run_records_responses_and_presence(model):
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        r = model.run(x, record=["V1", "IT"])
    assert set(r.responses) == {"V1", "IT"}
    assert r.responses["IT"].shape == (1, 5, 256, 2, 2)
    assert r.present["V1"].dtype == torch.bool and r.present["V1"].all()
    assert torch.allclose(r.logits, model(x))


def test_unknown_record_area_suggests(model):
    with pytest.raises(KeyError, match="unknown area 'V5' \\(did you mean 'V"):
        model.run(torch.rand(1, 3, 16, 16), record=["V5"])


def test_bad_input_shape_is_explained(model):
    with pytest.raises(ValueError, match=r"expected input \(B, T, \*\(3, 16, 16\)\)"):
        model(torch.rand(1, 3, 8, 8))


def test_longer_sequences_than_steps(model):
    with torch.no_grad():
        y = model(torch.rand(1, 9, 3, 16, 16))
    assert y.shape == (1, 9, 10)


def test_autograd_reaches_every_parameter(model):
    y = model(torch.rand(2, 3, 16, 16))
    y.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    model.zero_grad()


def test_silent_readout_gives_zeros():
    m = dd.compile(X4, {"size": 16, "steps": 3, "t_feedforward": "2 ms", "skip": "false"})
    with torch.no_grad():
        y = m(torch.rand(1, 3, 16, 16))
    assert torch.all(y == 0)   # IT needs 3 delays of 1 step, the readout one more


def test_compile_error_is_dynerror():
    with pytest.raises(dd.DynError) as info:
        dd.compile(X4.replace("V2 -> V4", "V2 -> V5"))
    assert "unknown area 'V5'" in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu(model):
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        gpu = model.to("cuda")(x.cuda()).cpu()
    model.to("cpu")
    assert torch.allclose(ref, gpu, atol=1e-4)


def test_to_and_dtype_roundtrip(model):
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    m64 = dd.compile(X4, {"size": 16, "steps": 5})
    m64.load_state_dict(model.state_dict())
    m64.double()
    with torch.no_grad():
        assert torch.allclose(m64(x).float(), model(x.float()), atol=1e-5)
