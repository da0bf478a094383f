"""One step convention with idle steps: `model.present_from`, `model.readout_from` and the
graph's `present_from` all count recorded steps from 0, idle steps negative."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dynvision_dsl as dd

pytestmark = pytest.mark.backend

SPEC = (Path(__file__).resolve().parent / "valid" / "idle_present_from.dyn").read_text()
IDLE = 3


def test_all_three_agree_on_recorded_steps():
    model = dd.compile(SPEC)
    want = {"A": -IDLE, "B": -IDLE + 5, "C": -IDLE + 7}  # delays 5 ms and 2 ms at dt = 1 ms
    assert model.present_from == want
    assert {a: model.graph.nodes[a]["present_from"] for a in want} == want
    assert model.readout_from == model.graph.nodes["readout"]["present_from"] == -IDLE
    assert model.graph.nodes["image"]["present_from"] == -IDLE


def test_the_recorded_run_is_present_from_those_steps():
    model = dd.compile(SPEC)
    result = model.run(torch.rand(1, 1, 4, 4))
    for area, first in model.present_from.items():
        present = result.present[area]
        assert not present[:max(first, 0)].any() and present[max(first, 0):].all(), area


def test_training_loss_starts_at_the_first_frame_when_the_readout_is_present_during_idle():
    """readout_from is negative here; logits[:, readout_from:] would train on the last 3 steps only."""
    from dynvision_dsl.train import _loss, first_trained_step

    model = dd.compile(SPEC)
    assert first_trained_step(model) == 0
    logits = torch.zeros(2, 10, 2, requires_grad=True)
    _loss(logits, torch.tensor([0, 1]), first_trained_step(model)).backward()
    assert (logits.grad != 0).all()
