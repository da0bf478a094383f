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
    from dynvision_dsl.science.train.losses import _loss
    from dynvision_dsl.science.train.presentation import label_steps

    model = dd.compile(SPEC)
    assert model.readout_from < 0 and model.first_scored_step == 0
    steps = label_steps(torch.ones(10, dtype=torch.bool), model.dt, 0.0, model.first_scored_step)
    logits = torch.zeros(2, 10, 2, requires_grad=True)
    _loss(logits, torch.tensor([0, 1]), steps).backward()
    assert (logits.grad != 0).all()


def test_first_scored_step_is_none_when_the_readout_is_silent_all_run_and_else_not_negative():
    """The one clamp of readout_from that training and the experiments share (DynModel)."""
    late = SPEC.replace("readout A :", "readout C :")  # C is present from recorded step 4
    model = dd.compile(late)
    assert model.readout_from == 4 and model.first_scored_step == 4
    silent = dd.compile(late.replace("steps = 10", "steps = 4"))
    assert silent.readout_from == 4 and silent.first_scored_step is None
    assert dd.compile(SPEC).first_scored_step == 0  # readout_from is -3
