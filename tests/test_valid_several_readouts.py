"""Several readouts (LANGUAGE.md 9.8): named by the `as` name of their last operator, else by
their area; `forward` returns a dict name -> (batch, steps, n), each head checked against its
own closed form (a linear map of the pooled source, delayed, zeros while silent)."""
import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl.cli import main

from valid_helpers import VALID, compiled, standalone

SPEC = VALID / "several_readouts.dyn"


def test_forward_returns_a_dict_by_readout_name():
    model = compiled("several_readouts")
    out = model(torch.rand(3, 1, 4, 4))
    assert list(out) == ["early", "V2"]
    assert out["early"].shape == (3, 8, 4) and out["V2"].shape == (3, 8, 5)
    assert model.readouts == {"early": 4, "V2": 5}
    names = list(model.state_dict())
    assert "early.weight" in names and "readout_V2.linear.weight" in names


def test_each_readout_matches_its_closed_form():
    model = compiled("several_readouts")
    x = torch.rand(2, 8, 1, 4, 4)
    run = model.run(x, record=["V1", "V2"])
    early = model.early(run.responses["V1"].mean((3, 4)))
    assert torch.allclose(run.logits["early"], early, atol=1e-6)
    late = model.readout_V2.linear(run.responses["V2"].mean((3, 4)))
    # V2 is present from step 2 (delay 2 ms); its readout reads it 1 ms later: from step 3
    assert model.readouts_from == {"early": 0, "V2": 3}
    assert torch.equal(run.logits["V2"][:, :3], torch.zeros(2, 3, 5))
    assert torch.allclose(run.logits["V2"][:, 3:], late[:, 2:-1], atol=1e-6)


def test_the_emitted_module_returns_the_same_dict():
    model = compiled("several_readouts")
    module = standalone("several_readouts", model)
    x = torch.rand(2, 1, 4, 4)
    ours, theirs = model(x), module(x)
    assert list(theirs) == list(ours) and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_single_readout_still_returns_a_tensor():
    model = dd.compile(SPEC.read_text().replace("readout V2 : avgpool | linear(5), delay 1 ms", ""))
    assert isinstance(model(torch.rand(1, 1, 4, 4)), torch.Tensor)
    assert "readout.linear.weight" not in model.state_dict() and "early.weight" in model.state_dict()


@pytest.mark.parametrize("old, new, where, message", [
    ("linear(5), delay 1 ms", "linear(5) as early", (17, 37), "two readouts are named 'early' (the first at line 16)"),
    ("readout V2 : avgpool | linear(5)", "readout V1 : avgpool | linear(5)", (17, 9),
     "two readouts are named 'V1' (the first at line 16)"),
])
def test_duplicate_readout_names_are_an_error_at_the_second_name(old, new, where, message):
    text = SPEC.read_text().replace(old, new)
    if "early" not in new:
        text = text.replace(" as early", "")
    errors = [d for d in dd.check(text) if d.is_error]
    assert errors and errors[0].code == "E151"
    assert (errors[0].span.line, errors[0].span.col) == where and errors[0].message == message


def test_dynv_run_prints_every_readout(tmp_path, capsys):
    assert main(["run", str(SPEC), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "readout early at the last step: class" in out and "readout V2 at the last step: class" in out
    saved = torch.load(tmp_path / "r" / "responses.pt", weights_only=True)
    assert set(saved["logits"]) == {"early", "V2"}


@pytest.mark.parametrize("argv", [
    ["train", str(SPEC), "--epochs", "1", "--out", "OUT"],
    ["experiment", "duration", str(SPEC), "--out", "OUT"],
    ["export", str(SPEC), "--to", "onnx", "-o", "OUT"],
])
def test_commands_that_score_one_readout_refuse_in_one_line(argv, tmp_path, capsys):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "handles one readout, but this spec has 2 (early, V2)" in err
    assert not (tmp_path / "out").exists()
