"""Running one protocol over the variants of a sweep, and the files an experiment writes."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ...model import DynModel
from .measure import device_of
from .protocol import INTRO, ON, Settings
from .protocol import ExperimentError
from .result import ExperimentResult, ModelInfo, Recorder
from .silence import weights_by_kind
from .table import get_protocol


def run_protocol(name: str, variants: dict[str, DynModel],
                 images: torch.Tensor | Callable[[tuple[int, int, int]], torch.Tensor],
                 labels: torch.Tensor | None = None, levels: Iterable[float] | None = None, batch: int = 32,
                 seed: int = 0, on: int = ON, intro: int = INTRO, weights: dict[str, str] | None = None,
                 title: str | None = None, noise: str = "gaussian", noise_mode: str = "dynamic") -> ExperimentResult:
    """Run protocol `name` on every variant (label -> model) with `images` (N, C, H, W) in
    [0, 1], or a function giving them for a model's input shape (for variants of other sizes).
    `on` is the interval's presentation length and `intro` the blank steps before the first
    presentation, both in steps; `noise` and `noise_mode` the noise protocol's noise."""
    proto = get_protocol(name)
    settings = Settings(intro, on, seed, noise, noise_mode).check()
    levels = _levels(proto, levels, labels)
    if batch < 1:
        raise ExperimentError(f"the batch must hold at least one image, got {batch}")
    if not variants:
        raise ExperimentError("no variants to run")
    result = ExperimentResult(name, levels, [], {}, {}, detail=f"{noise}, {noise_mode}" if name == "noise" else "")
    for label, model in variants.items():
        x = _images_for(label, model, images)
        rec = Recorder(name, label, float(model.dt))
        model.eval()
        with torch.no_grad():
            proto.run(model, x.float(), levels, batch, rec, settings, labels)
        info = _model_info(model) if proto.model_info else None
        for sub in rec.branches or [rec]:
            _collect(result, sub, model, (weights or {}).get(label), info)
    program = getattr(next(iter(variants.values())), "program", None)
    result.title = title if title is not None else program.model.name if program else name
    return result


def _levels(proto, levels, labels) -> list:
    if not proto.fixed_levels:
        return proto.check_levels(levels)
    if levels is not None:
        raise ExperimentError(f"{proto.name} takes no levels: its {proto.axis}es come from the labels")
    if labels is None:
        raise ExperimentError(f"the {proto.name} protocol needs labelled images: use --images digits or "
                              f"--images folder:PATH (one sub-folder per class)")
    return sorted(int(v) for v in torch.unique(labels))


def _images_for(label: str, model: DynModel, images) -> torch.Tensor:
    shape = tuple(model.input_shape)
    x = images(shape) if callable(images) else images
    if tuple(x.shape[1:]) != shape:
        raise ExperimentError(f"variant {label} takes images of shape {shape}, got {tuple(x.shape[1:])}")
    if len(x) == 0:
        raise ExperimentError("no images to show")
    return x


def _collect(result: ExperimentResult, rec: Recorder, model: DynModel, weights: str | None, info) -> None:
    """Add one recorder's rows and what its figures need to the result."""
    result.variants.append(rec.variant)
    result.rows += rec.rows
    result.pinned |= rec.pinned
    result.windows.update(rec.windows)
    result.areas[rec.variant] = tuple(model.areas)
    result.dt[rec.variant] = float(model.dt)
    result.classes[rec.variant] = int(model.classes)
    if weights is not None:
        result.weights[rec.variant] = weights
    if info is not None:
        result.models[rec.variant] = info


def _model_info(model: DynModel) -> ModelInfo:
    """Presence per area and step (one zero-input run: presence is the schedule's, not the values'),
    the connections and the weights by connection kind."""
    x = torch.zeros((1, model.steps) + tuple(model.input_shape), device=device_of(model))
    with torch.no_grad():
        _, raw = model.simulate(x, record=list(model.areas))
    present = {a: tuple(v is not None for v in raw[a]) for a in model.areas}
    edges = tuple((u, v, int(d["delay_steps"]), d["kind"]) for u, v, d in model.graph.edges(data=True))
    return ModelInfo(present, edges, {k: w.numpy().astype(np.float32) for k, w in weights_by_kind(model).items()})


def output_paths(name: str, out_dir: str | Path, stem: str | None = None) -> list[Path]:
    """The files an experiment writes: NAME.csv, NAME_<measure>.png per drawn measure, one PNG per
    other figure (NAME_timecourse.png, NAME_ridge.png, ...) and NAME.json (provenance)."""
    out_dir, stem, proto = Path(out_dir), stem or name, get_protocol(name)
    return ([out_dir / f"{stem}.csv"] + [out_dir / f"{stem}_{m}.png" for m in proto.measures]
            + [out_dir / f"{stem}_{f}.png" for f in proto.figures] + [out_dir / f"{stem}.json"])
