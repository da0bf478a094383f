"""A real offline Brain-Score run: DyRCNNx4 (untrained) as a BrainModel on 40 local images, IT
recorded in two time bins, scored by Brain-Score's own RDM and PLS metrics against a synthetic
recording (random mixtures of the model's late-bin responses plus noise; no data is downloaded).
Run it in the [brainscore] environment:  PYTHONPATH=. python docs/interop_brainscore_demo.py
"""
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import dynvision_dsl as dd
from dynvision_dsl.interop.brainscore import commitment

SPEC = Path(__file__).resolve().parents[1] / "specs" / "dyrcnn_x4.dyn"


def stimulus_set(folder: Path, n: int, rng):
    """n random 32 x 32 images written to `folder`, as a StimulusSet."""
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    paths = {}
    for i in range(n):
        paths[f"im{i}"] = folder / f"im{i}.png"
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(paths[f"im{i}"])
    stimuli = StimulusSet([{"stimulus_id": k, "image_index": i} for i, k in enumerate(paths)])
    stimuli.stimulus_paths, stimuli.identifier = paths, "local-random-images"
    return stimuli


def synthetic_recording(model_bin, sites: int, rng):
    """Sites that are random mixtures of the model's responses plus 10% noise."""
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    x = model_bin.values
    values = x @ rng.standard_normal((x.shape[1], sites)) + 0.1 * x.std() * rng.standard_normal((x.shape[0], sites))
    coords = {"stimulus_id": ("presentation", list(model_bin.stimulus_id.values)),
              "image_index": ("presentation", list(range(x.shape[0]))),
              "neuroid_id": ("neuroid", [f"site{i}" for i in range(sites)]), "region": ("neuroid", ["IT"] * sites)}
    return NeuroidAssembly(values, coords=coords, dims=["presentation", "neuroid"])


def main() -> None:
    from brainscore_vision import load_metric

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(1)
    stimuli = stimulus_set(Path(tempfile.mkdtemp()), 40, rng)
    torch.manual_seed(0)
    model = dd.compile_file(SPEC, {"size": 32, "steps": 20})
    brain_model = commitment(model, "dyrcnn_x4-untrained")
    brain_model.start_recording("IT", [(0, 20), (20, 40)])
    assembly = brain_model.look_at(stimuli)
    print(assembly.dims, dict(assembly.sizes))
    target = synthetic_recording(assembly.isel(time_bin=1), 30, rng)
    rdm = load_metric("rdm")
    pls = load_metric("pls", crossvalidation_kwargs=dict(splits=4, stratification_coord=None))
    for b in range(assembly.sizes["time_bin"]):
        source = assembly.isel(time_bin=b)
        print(f"IT {int(assembly.time_bin_start[b])}-{int(assembly.time_bin_end[b])} ms: "
              f"rdm {float(rdm(source, target)):.3f}  pls {float(pls(source, target)):.3f}")


if __name__ == "__main__":
    main()
