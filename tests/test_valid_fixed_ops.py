"""Fixed operators (LANGUAGE.md 9.4): constant buffers, not parameters, never trained;
`init=` sets every weight (and the bias to 0). Checked against torch's closed forms."""
import pytest
import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from valid_helpers import compile_valid, source, standalone

pytestmark = pytest.mark.backend


def test_fixed_weights_are_buffers_not_parameters():
    model = compile_valid("fixed_ops.dyn")
    params = {n for n, _ in model.named_parameters()}
    buffers = {n for n, _ in model.named_buffers()}
    assert {"image_to_Box.conv.weight", "image_to_Gain.pointwise.weight", "image_to_Gain.pointwise.bias",
            "frozen.weight"} <= buffers
    assert not any(n.startswith(("image_to_", "frozen")) for n in params)
    assert "frozen.weight" in model.state_dict()


def test_init_sets_the_weights_to_the_closed_form():
    model = compile_valid("fixed_ops.dyn")
    x = torch.rand(2, 2, 6, 6)
    run = model.run(x)
    box = F.conv2d(x, torch.full((1, 2, 3, 3), 1 / 9), padding=1)
    torch.testing.assert_close(run.responses["Box"][:, 0], box, rtol=1e-6, atol=1e-6)
    gain = 2 * x.sum(1, keepdim=True).expand(2, 3, 6, 6)  # pointwise(fixed, init=2): weights 2, bias 0
    torch.testing.assert_close(run.responses["Gain"][:, 0], gain, rtol=1e-6, atol=1e-6)


def test_training_leaves_fixed_weights_alone():
    model = compile_valid("fixed_ops.dyn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = model(torch.rand(2, 2, 6, 6)).square().sum()
    loss.backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(before["frozen.weight"], after["frozen.weight"])
    assert not torch.equal(before["readout.linear.weight"], after["readout.linear.weight"])


def test_the_standalone_module_keeps_weights_fixed():
    model = compile_valid("fixed_ops.dyn")
    emitted = standalone("fixed_ops.dyn", model)
    assert "def fixed_weights" in dd.emit(source("fixed_ops.dyn"))
    assert {n for n, _ in emitted.named_parameters()} == {n for n, _ in model.named_parameters()}
    x = torch.rand(1, 2, 6, 6)
    torch.testing.assert_close(emitted(x), model(x), rtol=0, atol=0)


SPEC = """time {{ dt = 1 ms  steps = 2 }}
input image [2, 3, 3]
area A [2] {{ r = input }}
image -> A : {pipeline}
readout A : avgpool | linear(2)
"""


def _first_error(pipeline: str):
    return next(d for d in dd.check(SPEC.format(pipeline=pipeline), file="f.dyn") if d.is_error)


@pytest.mark.parametrize("pipeline, code, col", [
    ("conv(3, init=0.5)", "E123", 22),
    ("maxpool(3, stride=1, padding=1, fixed) | conv(1)", "E124", 46),
    ("avgpool(3, stride=1, padding=1, init=1) | conv(1)", "E124", 46),
    ("conv(3, fixed, weightnorm=true)", "E125", 29),
])
def test_fixed_and_init_mistakes_are_located(pipeline, code, col):
    err = _first_error(pipeline)
    assert (err.code, err.span.line, err.span.col) == (code, 4, col), err.message


def test_scale_keeps_its_trainable_init():
    assert [d for d in dd.check(SPEC.format(pipeline="conv(1) | scale(init=0.5)")) if d.is_error] == []
