"""Several inputs (LANGUAGE.md 9.8): positional in declaration order or by name, each with its
own shape, delayed reads of the second input, and the errors for a missing, extra or wrongly
shaped input; the CLI commands that take one stimulus refuse such a spec in one line."""
import pytest
import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl.cli import main

from valid_helpers import VALID, compiled, standalone

SPEC = VALID / "several_inputs.dyn"


def _frames(seed: int, steps: int = 6):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, steps, 1, 4, 4, generator=g), torch.rand(2, steps, 1, 2, 2, generator=g)


def test_positional_and_named_calls_agree_and_match_the_closed_form():
    model = compiled("several_inputs")
    x, c = _frames(1)
    assert list(model.inputs) == ["image", "cue"]
    assert torch.equal(model(x, c), model(image=x, cue=c))
    assert torch.equal(model(x, cue=c), model(cue=c, image=x))
    run = model.run(x, cue=c, record=["V1", "V2"])
    up = F.interpolate(c.flatten(0, 1), size=(4, 4)).view(2, 6, 1, 4, 4)  # resize: nearest
    assert torch.allclose(run.responses["V1"], x * (1 + up), atol=1e-6)
    # V2 reads the cue two steps ago: silent for steps 0 and 1, then the frame t - 2
    assert run.present["V2"].tolist() == [False, False, True, True, True, True]
    assert torch.equal(run.responses["V2"][:, 2:], c[:, :-2])
    assert model.graph.nodes["V2"]["present_from"] == 2


def test_a_static_image_per_input_is_shown_for_every_step():
    model = compiled("several_inputs")
    x, c = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 2, 2)
    timed = model(x.unsqueeze(1).expand(-1, 6, -1, -1, -1), c.unsqueeze(1).expand(-1, 6, -1, -1, -1))
    assert torch.equal(model(x, c), timed)
    assert model({"image": x, "cue": c}.get("image"), c).shape == (2, 6, 3)
    assert torch.equal(model.run({"image": x, "cue": c}).logits, timed)
    assert torch.equal(model.run(image=x, cue=c, record=["V2"]).logits, timed)


def test_a_nan_in_the_second_input_is_named():
    model = compiled("several_inputs")
    x, c = _frames(4)
    c[1, 3, 0, 1, 1] = float("nan")
    with pytest.raises(dd.NonFiniteError, match=r"non-finite values \(nan\) in input 'cue' at step 3 \(3 ms\), batch item 1"):
        model.run(x, cue=c)


def test_the_emitted_module_takes_the_inputs_the_same_ways():
    model = compiled("several_inputs")
    module = standalone("several_inputs", model)
    x, c = _frames(2)
    assert torch.equal(module(x, c), model(x, c))
    assert torch.equal(module(image=x, cue=c), model(x, c))


@pytest.mark.parametrize("call, kind, text", [
    (lambda m, x, c: m(x), TypeError, "missing input 'cue'; the model takes image [1, 4, 4], cue [1, 2, 2]"),
    (lambda m, x, c: m(x, c, c), TypeError, "the model takes 2 inputs (image [1, 4, 4], cue [1, 2, 2]), got 3"),
    (lambda m, x, c: m(x, cues=c), TypeError, "unknown input 'cues'; the model takes image [1, 4, 4], cue [1, 2, 2]"),
    (lambda m, x, c: m(x, c, image=x), TypeError, "input 'image' is given twice, by position and by name"),
    (lambda m, x, c: m(x, x), ValueError, "expected input 'cue' (B, T, *(1, 2, 2)) or (B, *(1, 2, 2)), got (2, 6, 1, 4, 4)"),
    (lambda m, x, c: m(x, c[:, :3]), ValueError, "the inputs disagree on (batch, steps)"),
])
def test_a_wrong_call_names_the_input(call, kind, text):
    model = compiled("several_inputs")
    x, c = _frames(3)
    with pytest.raises(kind) as info:
        call(model, x, c)
    assert text in str(info.value)


def test_a_spec_with_one_input_keeps_its_message_and_its_positional_call():
    model = dd.compile(SPEC.read_text().replace("input cue   [1, 2, 2]", "").replace("cue   -> V1.att : resize", "")
                       .replace("cue   -> V2     : identity, delay 2 ms", "image -> V2 : identity")
                       .replace("(1 + att)", "1"))
    with pytest.raises(ValueError, match=r"^expected input \(B, T, \*\(1, 4, 4\)\)"):
        model(torch.rand(2, 3, 4, 4))
    assert model(image=torch.rand(2, 1, 4, 4)).shape == (2, 6, 3)


def test_a_duplicate_input_is_an_error_at_its_name():
    text = SPEC.read_text().replace("input cue   [1, 2, 2]", "input image [1, 2, 2]")
    (error,) = [d for d in dd.check(text) if d.is_error][:1]
    assert (error.code, error.span.line, error.span.col) == ("E150", 7, 7)
    assert error.message == "input 'image' is declared twice (first at line 6)"


@pytest.mark.parametrize("argv", [
    ["run", str(SPEC)],
    ["train", str(SPEC), "--epochs", "1"],
    ["experiment", "duration", str(SPEC)],
    ["export", str(SPEC), "--to", "nir", "-o", "NIR"],
])
def test_commands_that_take_one_stimulus_refuse_in_one_line(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("NIR", str(tmp_path / "x.nir")) for a in argv]
    argv += ["--out", str(tmp_path / "out")] if argv[0] in ("run", "train", "experiment") else []
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "handles one input, but this spec has 2 (image, cue)" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.nir").exists()
