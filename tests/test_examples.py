"""The contract: every shared example compiles and runs unchanged (skipped in a user's clone)."""
import pytest
import torch

import dynvision_dsl as dd

from conftest import shared_examples

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("path", shared_examples() or [pytest.param(None, marks=pytest.mark.skip(
    reason="../shared/examples is not available (it ships beside the repository, not inside it)"))], ids=lambda p: p.stem if p else "absent")
def test_shared_example_compiles_and_runs(path):
    model = dd.compile(path.read_text(), file=str(path))
    torch.manual_seed(0)
    inputs = {name: torch.rand(2, *shape) for name, shape in model.inputs.items()}
    with torch.no_grad():
        result = model.run(**inputs, seed=0)
    heads = result.logits if isinstance(result.logits, dict) else {"": result.logits}
    assert len(heads) == len(model.readouts)
    for head, logits in heads.items():
        assert logits.shape[:2] == (2, model.steps), head
        assert torch.isfinite(logits).all(), head
    for area, present in result.present.items():
        assert present.any(), f"{area} is silent for the whole run"
