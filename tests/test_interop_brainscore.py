"""Brain-Score: time bins onto steps (everywhere) and the BrainModel on local images (with the extra)."""
import numpy as np
import pytest
import torch

from conftest import ROOT

import dynvision_dsl as dd
from dynvision_dsl.interop import InteropError
from dynvision_dsl.interop.brainscore import bins_to_steps

X4 = ROOT / "specs" / "dyrcnn_x4.dyn"


def test_bins_map_onto_the_steps_they_hold():
    bins = bins_to_steps([(0, 10), (10, 25), (70, 170)], step_ms=5)
    assert [b.steps for b in bins] == [(0, 1), (2, 3, 4), tuple(range(14, 34))]
    with pytest.raises(InteropError, match=r"time bin \(3, 4\) ms holds no step of 5 ms"):
        bins_to_steps([(3, 4)], 5)
    with pytest.raises(InteropError, match="0 <= start < end"):
        bins_to_steps([(10, 10)], 5)


@pytest.fixture(scope="module")
def brain(tmp_path_factory):
    pytest.importorskip("brainscore_vision")
    from PIL import Image

    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    folder = tmp_path_factory.mktemp("stimuli")
    rng = np.random.default_rng(0)
    rows, paths = [], {}
    for i in range(6):
        path = folder / f"im{i}.png"
        Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).save(path)
        rows.append({"stimulus_id": f"im{i}", "image_label": "a" if i % 2 else "b"})
        paths[f"im{i}"] = path
    stimuli = StimulusSet(rows)
    stimuli.stimulus_paths = paths
    stimuli.identifier = "local-test"
    torch.manual_seed(0)
    model = dd.compile_file(X4, {"size": 16, "steps": 6, "classes": 2})
    from dynvision_dsl.interop.brainscore import commitment

    return model, commitment(model, "dyrcnn_x4-test", step_ms=5), stimuli


def test_recording_has_time_bins_and_averages_the_steps(brain):
    model, brain_model, stimuli = brain
    brain_model.start_recording("IT", [(0, 10), (10, 30)])
    assembly = brain_model.look_at(stimuli)
    assert assembly.dims == ("presentation", "neuroid", "time_bin")
    assert list(assembly["time_bin_start"].values) == [0, 10] and list(assembly["time_bin_end"].values) == [10, 30]
    assert list(assembly["stimulus_id"].values) == [f"im{i}" for i in range(6)]
    assert set(assembly["region"].values) == {"IT"} and assembly.sizes["neuroid"] == 256 * 2 * 2
    from dynvision_dsl.stimuli import load_image

    x = load_image(stimuli.get_stimulus("im0"), 3, 16, 16)[None, None].expand(-1, 6, -1, -1, -1)
    with torch.no_grad():
        it = model.run(x, record=["IT"]).responses["IT"].flatten(2)[0]
    assert np.allclose(assembly.values[0, :, 0], it[0:2].mean(0).numpy(), atol=1e-6)
    assert np.allclose(assembly.values[0, :, 1], it[2:6].mean(0).numpy(), atol=1e-6)


def test_label_and_probability_tasks(brain):
    _, brain_model, stimuli = brain
    from brainscore_vision.model_interface import BrainModel

    brain_model.start_task(BrainModel.Task.label, ["cat", "dog"])
    labels = brain_model.look_at(stimuli)
    assert labels.dims == ("presentation", "choice") and set(labels.values.ravel()) <= {"cat", "dog"}
    brain_model.start_task(BrainModel.Task.probabilities, stimuli)
    proba = brain_model.look_at(stimuli)
    assert proba.shape == (6, 2) and np.allclose(proba.values.sum(1), 1)
    assert list(proba["choice"].values) == ["a", "b"]
    with pytest.raises(InteropError, match="needs a list of 2 labels"):
        brain_model.start_task(BrainModel.Task.label, "imagenet")
    assert brain_model.identifier == "dyrcnn_x4-test" and brain_model.visual_degrees() == 8


def test_bad_region_map_and_readout():
    from dynvision_dsl.interop.brainscore import commitment

    model = dd.compile_file(X4, {"size": 16, "steps": 2})
    with pytest.raises(InteropError, match="does not have"):
        commitment(model, "x", region_map={"IT": "PFC"})
    with pytest.raises(InteropError, match="neither 'logits' nor an area"):
        commitment(model, "x", behavioral_readout="PFC")
    with pytest.raises(InteropError, match="no area is mapped to region 'V4'"):
        commitment(model, "x", region_map={"IT": "IT"}).start_recording("V4", [(0, 10)])


def test_assemblies_feed_brainscore_metrics(brain):
    from brainscore_vision import load_metric

    _, brain_model, stimuli = brain
    brain_model.start_recording("V4", [(0, 10), (10, 30)])
    assembly = brain_model.look_at(stimuli)
    rdm = load_metric("rdm")
    late = assembly.isel(time_bin=1)
    assert float(rdm(late, late)) == pytest.approx(1.0)
    assert -1 <= float(rdm(assembly.isel(time_bin=0), late)) < 1
