"""A compiled model as a Brain-Score vision `BrainModel`: recordings per region with a
`time_bin` dimension (time bins in ms mapped onto recorded steps) and behaviour from the readout.

Needs the `[brainscore]` extra (brainscore_vision, which pins numpy<2 and scikit-learn<1.6);
install it in its own environment. Stimulus onset is the first step after the idle steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import InteropError

try:
    from brainscore_vision.model_interface import BrainModel
except ImportError:  # the interface is mirrored so the mapping can be used (and tested) without it
    class BrainModel:  # type: ignore[no-redef]
        class Task:
            passive, label, probabilities, odd_one_out = "passive", "label", "probabilities", "odd_one_out"

        class RecordingTarget:
            V1, V2, V4, IT = "V1", "V2", "V4", "IT"

DEFAULT_REGIONS = {"V1": "V1", "V2": "V2", "V4": "V4", "IT": "IT"}


@dataclass(frozen=True)
class Bin:
    """One requested time bin [start, end) in ms and the recorded steps whose onset lies in it."""

    start: int
    end: int
    steps: tuple[int, ...]


def bins_to_steps(time_bins, step_ms: float) -> list[Bin]:
    """Map time bins (ms after stimulus onset) onto steps: step t covers [t, t+1) * step_ms."""
    out = []
    for start, end in time_bins:
        if end <= start or start < 0:
            raise InteropError(f"time bin ({start}, {end}) must satisfy 0 <= start < end (ms)")
        steps = tuple(t for t in range(math.ceil(end / step_ms)) if start <= t * step_ms < end)
        if not steps:
            raise InteropError(f"time bin ({start}, {end}) ms holds no step of {step_ms:g} ms; "
                               f"use bins at least {step_ms:g} ms wide")
        out.append(Bin(int(start), int(end), steps))
    return out


def _stimulus_table(stimuli) -> tuple[list[str], list[str], dict[str, list]]:
    """(ids, paths, extra columns) from a StimulusSet or a list of image paths."""
    if isinstance(stimuli, (list, tuple)):
        return [str(p) for p in stimuli], [str(p) for p in stimuli], {}
    ids = [str(i) for i in stimuli["stimulus_id"]]
    paths = [str(stimuli.get_stimulus(i)) for i in stimuli["stimulus_id"]]
    extra = {c: list(stimuli[c]) for c in stimuli.columns if c not in ("stimulus_id", "stimulus_path")}
    return ids, paths, extra


class DynBrainModel(BrainModel):
    """A compiled `.dyn` model behind Brain-Score's BrainModel interface (see `commitment`)."""

    def __init__(self, model, identifier: str, region_map: dict[str, str], behavioral_readout: str,
                 step_ms: float | None, visual_degrees: float, batch_size: int):
        model.require("the Brain-Score wrapper")  # one stimulus set, one behavioural readout
        self.model, self._identifier, self.region_map = model.eval(), identifier, dict(region_map)
        self.behavioral_readout, self.batch_size, self._degrees = behavioral_readout, batch_size, visual_degrees
        self.step_ms = float(step_ms if step_ms is not None else model.dt)
        self.task, self.recording, self._labels, self._classifier = None, None, None, None

    @property
    def identifier(self) -> str:
        return self._identifier

    def visual_degrees(self) -> float:
        return self._degrees

    def start_recording(self, recording_target: str, time_bins) -> None:
        if recording_target not in self.region_map:
            raise InteropError(f"no area is mapped to region {recording_target!r}; region_map has "
                               f"{sorted(self.region_map)}")
        self.recording = (recording_target, bins_to_steps(time_bins, self.step_ms))
        self.task = None

    def start_task(self, task: str, fitting_stimuli=None) -> None:
        self.recording, self.task = None, task
        if task == BrainModel.Task.label:
            self._labels = self._label_set(fitting_stimuli)
        elif task == BrainModel.Task.probabilities:
            self._classifier = self._fit(fitting_stimuli)
        elif task != BrainModel.Task.passive:
            raise InteropError(f"task {task!r} is not supported (passive, label, probabilities)")

    def _label_set(self, labels) -> list:
        if labels is None or isinstance(labels, str) or len(labels) != self.model.classes:
            raise InteropError(f"the label task needs a list of {self.model.classes} labels, one per readout "
                               f"class, got {labels!r}")
        return list(labels)

    # ---------------------------------------------------------------- running
    def _simulate(self, paths: list[str], record: list[str], steps: int):
        from ..stimuli import load_image

        c, h, w = self.model.input_shape
        logits, responses = [], {a: [] for a in record}
        for i in range(0, len(paths), self.batch_size):
            images = torch.stack([load_image(p, c, h, w) for p in paths[i:i + self.batch_size]])
            frames = images.unsqueeze(1).expand(-1, steps, -1, -1, -1)
            with torch.no_grad():
                result = self.model.run(frames, record=record)
            logits.append(result.logits)
            for a in record:
                responses[a].append(result.responses[a].flatten(2))
        return torch.cat(logits), {a: torch.cat(v) for a, v in responses.items()}

    def _features(self, paths: list[str]) -> np.ndarray:
        """The behavioural readout at the last step: the logits or an area's flattened responses."""
        if self.behavioral_readout == "logits":
            return self._simulate(paths, [], self.model.steps)[0][:, -1].numpy()
        area = self.region_map.get(self.behavioral_readout, self.behavioral_readout)
        return self._simulate(paths, [area], self.model.steps)[1][area][:, -1].numpy()

    def _fit(self, fitting_stimuli):
        from sklearn.linear_model import LogisticRegression

        _, paths, extra = _stimulus_table(fitting_stimuli)
        if "image_label" not in extra:
            raise InteropError("the probabilities task needs fitting stimuli with an 'image_label' column")
        return LogisticRegression(max_iter=1000).fit(self._features(paths), np.asarray(extra["image_label"]))

    def look_at(self, stimuli, number_of_trials: int = 1):
        """Recordings (if recording) or the task's behaviour; the model is deterministic, so trials are one."""
        ids, paths, extra = _stimulus_table(stimuli)
        if self.recording is not None:
            return self._record(ids, paths, extra)
        if self.task == BrainModel.Task.label:
            logits = self._simulate(paths, [], self.model.steps)[0][:, -1]
            choice = [self._labels[int(k)] for k in logits.argmax(1)]
            return _behaviour(np.array(choice, dtype=object)[:, None], ids, paths, extra, None)
        if self.task == BrainModel.Task.probabilities:
            proba = self._classifier.predict_proba(self._features(paths))
            return _behaviour(proba, ids, paths, extra, list(self._classifier.classes_))
        return None

    def _record(self, ids, paths, extra):
        region, bins = self.recording
        area = self.region_map[region]
        steps = max(max(b.steps) for b in bins) + 1
        responses = self._simulate(paths, [area], steps)[1][area]  # (N, steps, neuroids)
        values = np.stack([responses[:, list(b.steps)].mean(1).numpy() for b in bins], -1)
        return _neuroids(values, ids, paths, extra, area, region, bins)


# ------------------------------------------------------------- assemblies
def _presentation(ids, paths, extra) -> dict:
    coords = {"stimulus_id": ("presentation", ids), "stimulus_path": ("presentation", paths)}
    coords.update({k: ("presentation", v) for k, v in extra.items()})
    return coords


def _neuroids(values, ids, paths, extra, area, region, bins):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    n = values.shape[1]
    coords = {**_presentation(ids, paths, extra),
              "neuroid_id": ("neuroid", [f"{area}.{i}" for i in range(n)]),
              "neuroid_num": ("neuroid", list(range(n))), "region": ("neuroid", [region] * n),
              "layer": ("neuroid", [area] * n),
              "time_bin_start": ("time_bin", [b.start for b in bins]),
              "time_bin_end": ("time_bin", [b.end for b in bins])}
    return NeuroidAssembly(values, coords=coords, dims=["presentation", "neuroid", "time_bin"])


def _behaviour(values, ids, paths, extra, choices):
    from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly

    coords = _presentation(ids, paths, extra)
    if choices is not None:
        coords["choice"] = ("choice", choices)
    return BehavioralAssembly(values, coords=coords, dims=["presentation", "choice"])


def commitment(model, identifier: str, region_map: dict[str, str] | None = None,
               behavioral_readout: str = "logits", step_ms: float | None = None,
               visual_degrees: float = 8, batch_size: int = 16) -> DynBrainModel:
    """A BrainModel over a compiled model: regions recorded from the mapped areas, one step lasting
    `step_ms` (default: the spec's dt), behaviour from the logits or from an area (`behavioral_readout`)."""
    if region_map is None:  # the default keeps the regions whose area the model has
        region_map = {r: a for r, a in DEFAULT_REGIONS.items() if a in model.areas}
    missing = {r: a for r, a in region_map.items() if a not in model.areas}
    if missing:
        raise InteropError(f"region_map names areas the model does not have: {missing}; areas: {list(model.areas)}")
    readout_area = region_map.get(behavioral_readout, behavioral_readout)
    if behavioral_readout != "logits" and readout_area not in model.areas:
        raise InteropError(f"behavioral_readout {behavioral_readout!r} is neither 'logits' nor an area or region")
    if step_ms is not None and step_ms <= 0:
        raise InteropError(f"step_ms must be positive, got {step_ms}")
    return DynBrainModel(model, identifier, region_map, behavioral_readout, step_ms, visual_degrees, batch_size)
