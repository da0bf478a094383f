"""The feed-forward zoo specs load torchvision's state dicts strictly and, with
steps = 1 in eval mode, reproduce torchvision's logits."""
import pytest
import torch
import torchvision

import dynvision_dsl as dd

from conftest import ROOT

pytestmark = pytest.mark.backend


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights and batch-norm statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 1.5 + 0.5)
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))


@pytest.mark.parametrize("name, factory, size", [
    ("alexnet", torchvision.models.alexnet, 96),
    ("resnet18", torchvision.models.resnet18, 64),
])
def test_matches_torchvision(name, factory, size):
    torch.manual_seed(0)
    reference = factory(num_classes=10)
    _perturb(reference, 1)
    reference.eval()
    model = dd.compile((ROOT / "specs" / f"{name}.dyn").read_text(), {"size": size, "classes": 10, "steps": 1})
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    x = torch.rand(3, 3, size, size)
    with torch.no_grad():
        expected = reference(x)
        got = model(x)
    assert got.shape == (3, 1, 10)
    assert expected.abs().max() > 1e-2  # the comparison is not between near-zero outputs
    assert torch.allclose(got[:, 0], expected, atol=1e-4, rtol=1e-4), (got[:, 0] - expected).abs().max()


def test_resnet_steps_repeat_the_same_answer():
    model = dd.compile((ROOT / "specs" / "resnet18.dyn").read_text(), {"size": 32, "classes": 10, "steps": 3}).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 32, 32))
    assert torch.allclose(y[:, 0], y[:, 2])
