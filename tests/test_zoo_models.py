"""Zoo specs CorNetRT (specs/cornet_rt.dyn) and CordsNet (specs/cordsnet.dyn):
they compile, load DynVision 0.1.0 state dicts, match the shared reference
fixtures, and their params select the variants they document."""
import pytest
import torch

import dynvision_dsl
from conftest import ROOT, shared_path

CORNET = (ROOT / "specs" / "cornet_rt.dyn").read_text()
CORDS = (ROOT / "specs" / "cordsnet.dyn").read_text()
WN = "classifier.3.parametrizations.weight.original"


def compile_(source, **params):
    return dynvision_dsl.compile(source, {"size": 32, "steps": 3, "classes": 10, **params})


def fixture(name):
    data = torch.load(shared_path("fixtures", "dynvision", name), weights_only=False)
    sd = {k: v.float() if torch.is_floating_point(v) else v for k, v in data["state_dict"].items()}
    return data, sd


def fixture_model(source, data):
    steps, _, size, _ = data["meta"]["input_dims"]
    return dynvision_dsl.compile(source, {"size": size, "steps": steps, "classes": 10, **data["meta"]["dsl_params"]})


def reference_keys(sd):
    """The reference's own keys: without its aliases, time constants and counter."""
    return {k for k in sd if ".source." not in k and not k.startswith(("tau_", "tstep_"))
            and k != "n_residual_timesteps"}


def without_linear_weightnorm(sd, model=None):
    """classifier.3 is a weight-normalised Linear in DynVision; linear() has no
    weightnorm option, so the spec holds W = g v / |v| (kept as is once it has one)."""
    if model is not None and "classifier.3.weight" not in model.state_dict():
        return sd
    sd = dict(sd)
    g, v = sd.pop(WN + "0"), sd.pop(WN + "1")
    sd["classifier.3.weight"] = torch._weight_norm(v, g, 0)
    return sd


def randomize(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen) + (p if p.numel() == 1 else 0))
    return model


def run(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("source", [CORNET, CORDS], ids=["cornet_rt", "cordsnet"])
def test_compiles_and_runs(source):
    model = compile_(source, idle_steps=1) if source is CORDS else compile_(source)
    out = run(model, torch.randn(2, 3, 3, 32, 32))
    assert out.shape == (2, 3, 10)
    assert torch.isfinite(out).all()


# ---------------------------------------------------------------- CorNetRT
def test_cornet_rt_matches_shared_fixture():
    data, sd = fixture("cornet_rt.pt")
    model = fixture_model(CORNET, data)
    model.load_dynvision(sd)
    torch.testing.assert_close(run(model, data["input"]), data["output"], atol=1e-5, rtol=1e-4)


def test_cornet_rt_keys_equal_the_reference():
    _, sd = fixture("cornet_rt.pt")
    assert set(compile_(CORNET).state_dict()) == reference_keys(sd)


def test_cornet_rt_later_areas_start_at_rest():
    # at t_feedforward = dt the image reaches IT at step 3; before that IT's
    # output (and so the logits) is computed from rest states only, the same
    # for any image; with t_feedforward = 0 the image reaches IT at once
    model = randomize(compile_(CORNET, steps=4))
    a, b = torch.randn(2, 1, 4, 3, 32, 32)
    ya, yb = run(model, a), run(model, b)
    torch.testing.assert_close(ya[:, :3], yb[:, :3], atol=0, rtol=0)
    assert not torch.allclose(ya[:, 3], yb[:, 3])
    fast = compile_(CORNET, steps=4, t_feedforward="0 ms")
    fast.load_state_dict(model.state_dict())
    assert not torch.allclose(run(fast, a)[:, 0], run(fast, b)[:, 0])


def test_cornet_rt_recurrence_none_has_no_recurrent_weights():
    keys = set(compile_(CORNET, recurrence="none").state_dict())
    assert keys == set(compile_(CORNET).state_dict()) - {f"{a}.recurrence.weight" for a in ("V1", "V2", "V4", "IT")}


def test_cornet_rt_recurrence_target_moves_the_recurrent_term():
    middle = randomize(compile_(CORNET))
    output = compile_(CORNET, recurrence_target="output")
    output.load_state_dict(middle.state_dict())  # the same weights
    x = torch.randn(1, 3, 3, 32, 32)
    ym, yo = run(middle, x), run(output, x)
    torch.testing.assert_close(ym[:, 0], yo[:, 0], atol=0, rtol=0)  # no recurrent term yet
    assert not torch.allclose(ym[:, 2], yo[:, 2])


def test_cornet_rt_rest_lasts_until_the_input_reaches_it():
    # with t_feedforward = 2 dt, IT's input (V4's rest output) arrives at step
    # 3 * 2 - 2 = 4: until then IT keeps its rest output; the image reaches IT
    # at step 3 * 2 = 6
    model = randomize(compile_(CORNET, steps=7, t_feedforward="4 ms"))
    a, b = torch.randn(2, 1, 7, 3, 32, 32)
    ya, yb = run(model, a), run(model, b)
    torch.testing.assert_close(ya[:, :4], ya[:, :1].expand(-1, 4, -1), atol=0, rtol=0)
    assert not torch.allclose(ya[:, 4], ya[:, 3])
    torch.testing.assert_close(ya[:, :6], yb[:, :6], atol=0, rtol=0)
    assert not torch.allclose(ya[:, 6], yb[:, 6])


# ---------------------------------------------------------------- CordsNet
def test_cordsnet_matches_shared_fixture():
    data, sd = fixture("cordsnet.pt")
    model = fixture_model(CORDS, data)
    model.load_dynvision(without_linear_weightnorm(sd, model))
    torch.testing.assert_close(run(model, data["input"]), data["output"], atol=1e-5, rtol=1e-4)


def test_cordsnet_keys_equal_the_reference_except_the_weightnorm_linear():
    _, sd = fixture("cordsnet.pt")
    model = compile_(CORDS)
    assert set(model.state_dict()) == reference_keys(without_linear_weightnorm(sd, model))


def test_cordsnet_loads_the_reference_state_dict_as_is():
    data, sd = fixture("cordsnet.pt")
    model = fixture_model(CORDS, data)
    assert set(model.state_dict()) == reference_keys(sd)
    model.load_dynvision(sd)


def test_cordsnet_idle_steps_change_the_output():
    base = randomize(compile_(CORDS, idle_steps=0))
    x = torch.randn(1, 3, 3, 32, 32)
    idle = compile_(CORDS, idle_steps=3)
    idle.load_state_dict(base.state_dict())
    y0, y3 = run(base, x), run(idle, x)
    assert y3.shape == y0.shape == (1, 3, 10)
    assert not torch.allclose(y0, y3)
    # idle steps are blank frames before the input: prepending them by hand agrees
    blank = torch.cat([torch.zeros(1, 3, 3, 32, 32), x], dim=1)
    torch.testing.assert_close(run(base, blank)[:, 3:], y3)


def test_cordsnet_skip_and_recurrence_select_their_weights():
    full = set(compile_(CORDS, idle_steps=0).state_dict())
    noskip = set(compile_(CORDS, idle_steps=0, skip=False).state_dict())
    norec = set(compile_(CORDS, idle_steps=0, recurrence="none").state_dict())
    assert full - noskip == {k for k in full if k.startswith("addskip_")}
    assert full - norec == {k for k in full if ".recurrence." in k}
    dpw = set(compile_(CORDS, idle_steps=0, recurrence="depthpointwise").state_dict())
    assert "layer3.recurrence.depthwise_conv.parametrizations.weight.original0" in dpw
    assert "layer3.recurrence.pointwise_conv.weight" in dpw  # weight norm on the depthwise conv only


# ------------------------------------------------- params of every DynVision spec
from dynvision_dsl.frontend.parse import parse
from dynvision_dsl.frontend.syntax import ParamDecl

DYNVISION_SPECS = ["dyrcnn_x2", "dyrcnn_x4", "dyrcnn_x8", "cornet_rt", "cordsnet"]
REQUIRED = {"dt", "tau", "t_feedforward", "t_recurrence", "t_feedback", "t_skip",
            "recurrence", "feedback", "skip", "supralinearity"}
EXTRA = {"dyrcnn_x8": {"recurrence_target"}, "cornet_rt": {"recurrence_target"},
         "cordsnet": {"idle_steps"}}
SMALL = {"cordsnet": {"idle_steps": 1}}


def declared_params(name):
    module = parse((ROOT / "specs" / f"{name}.dyn").read_text())
    return {d.name.name: d.value for d in module.decls if isinstance(d, ParamDecl)}


@pytest.mark.parametrize("name", DYNVISION_SPECS)
def test_dynvision_specs_declare_the_shared_params(name):
    params = declared_params(name)
    assert REQUIRED | EXTRA.get(name, set()) <= set(params)
    assert params["feedback"].value == "off"
    assert params["supralinearity"].value == 1


@pytest.mark.parametrize("change", [{"feedback": "add"}, {"feedback": "mul"}, {"skip": "flip"},
                                    {"supralinearity": 1.5}], ids=["add", "mul", "skip", "supra"])
@pytest.mark.parametrize("name", DYNVISION_SPECS)
def test_dynvision_spec_extensions_change_the_logits(name, change):
    source = (ROOT / "specs" / f"{name}.dyn").read_text()
    fixed = {"t_feedback": "2 ms", "t_feedforward": "0 ms", **SMALL.get(name, {})}
    if change.get("skip") == "flip":
        change = {"skip": not declared_params(name)["skip"].value}
    base = randomize(compile_(source, steps=4, **fixed))
    other = randomize(compile_(source, steps=4, **fixed, **change), seed=1)
    shared = {k: v for k, v in base.state_dict().items() if k in other.state_dict()}
    other.load_state_dict(shared, strict=False)  # the same weights where both have them
    x = torch.randn(1, 4, 3, 32, 32)
    assert not torch.allclose(run(base, x)[:, -1], run(other, x)[:, -1])
