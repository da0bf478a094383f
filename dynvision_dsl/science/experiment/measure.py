"""Running a model on stimuli and reducing what it does to per-step mean responses,
and the measures read off those time courses (peaks, latencies, growth)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from ...model import DynModel, first_non_finite
from .protocol import THRESHOLD


def responses(model: DynModel, x: torch.Tensor, areas: Iterable[str]) -> tuple[torch.Tensor, dict]:
    """Logits (B, T, classes) and per area the mean |r| per image and step (B, T), reducing
    each recorded step as soon as the simulation returns so that no (B, T, C, H, W) is stacked."""
    areas = list(areas)
    logits, raw = model.simulate(x, record=areas)
    zero = x.new_zeros(x.shape[0], dtype=torch.float64)
    out = {}
    for area in areas:
        steps = raw.pop(area)
        out[area] = torch.stack([zero if v is None else v.detach().abs().flatten(1).mean(1).double()
                                 for v in steps], 1)
        del steps
    # a NaN or inf anywhere in an area makes its mean non-finite: stop, naming area, step and item
    error = first_non_finite(logits, {a: r.unsqueeze(-1) for a, r in out.items()}, model.dt)
    if error is not None:
        raise error
    return logits, out


@dataclass
class Courses:
    """Mean responses (T,) per area over all images; with labels, the share of images
    classified right at each step (T,) and the predictions at the last step (N,)."""

    response: dict[str, np.ndarray]
    correct: np.ndarray | None
    predicted: np.ndarray | None = None


def device_of(model: DynModel) -> torch.device:
    return next((t.device for t in model.parameters()), torch.device("cpu"))


def simulate(model: DynModel, images: torch.Tensor, levels: list,
             make: Callable[[torch.Tensor, torch.Tensor, object], torch.Tensor], batch: int,
             labels: torch.Tensor | None = None) -> list[Courses]:
    """Show `make(images[idx], idx, level)` for every level and image, at most `batch` stimuli
    per forward pass (levels share a pass when the images are few); one Courses per level.
    Stimuli go to the model's device; the sums come back to the CPU."""
    n = images.shape[0]
    device = device_of(model)
    pairs = [(k, i) for k in range(len(levels)) for i in range(n)]
    total: list[dict[str, torch.Tensor]] = [{} for _ in levels]
    correct: list[torch.Tensor | None] = [None for _ in levels]
    predicted = [torch.zeros(n, dtype=torch.long) for _ in levels]
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        groups = [(k, torch.tensor([i for kk, i in chunk if kk == k])) for k in dict.fromkeys(k for k, _ in chunk)]
        x = torch.cat([make(images[idx], idx, levels[k]) for k, idx in groups]).to(device)
        logits, resp = responses(model, x, model.areas)
        at = 0
        for k, idx in groups:
            part = slice(at, at + len(idx))
            at += len(idx)
            for area, r in resp.items():
                s = r[part].sum(0).cpu()
                total[k][area] = total[k][area] + s if area in total[k] else s
            if labels is not None:
                guess = logits[part].argmax(-1).cpu()
                hit = (guess == labels[idx].unsqueeze(1)).double().sum(0)
                correct[k] = hit if correct[k] is None else correct[k] + hit
                predicted[k][idx] = guess[:, -1]
    return [Courses({a: (v / n).numpy() for a, v in total[k].items()},
                    None if correct[k] is None else (correct[k] / n).numpy(),
                    None if labels is None else predicted[k].numpy()) for k in range(len(levels))]


def peak(course: np.ndarray, lo: int, hi: int) -> tuple[float, int | None]:
    """Largest value in course[lo:hi] and its index (None for an empty window)."""
    lo, hi = max(lo, 0), min(hi, len(course))
    if hi <= lo:
        return math.nan, None
    i = int(np.argmax(course[lo:hi]))
    return float(course[lo + i]), lo + i


def latency(evoked: np.ndarray, onset: int) -> float:
    """Steps from onset to the first evoked response (stimulus run minus blank run) above
    THRESHOLD of its peak (NaN if the stimulus evokes nothing)."""
    after = evoked[onset:]
    top = after.max() if len(after) else 0.0
    if not top > 0:
        return math.nan
    return float(np.argmax(after > THRESHOLD * top))


def first_difference(a: np.ndarray, b: np.ndarray, onset: int = 0, rtol: float = 1e-6) -> float:
    """Steps from onset to the first step at which two time courses differ (NaN if never)."""
    diff = np.abs(a[onset:] - b[onset:]) > rtol * np.maximum(np.abs(a[onset:]), np.abs(b[onset:])) + 1e-12
    return float(np.argmax(diff)) if diff.any() else math.nan


def check_labels(model: DynModel, images: torch.Tensor, labels: torch.Tensor | None, protocol: str) -> int:
    """The labels fit the images and the readout; returns the first step at which the readout is present."""
    from .protocol import ExperimentError

    if labels is None:
        raise ExperimentError(f"the {protocol} protocol measures accuracy and needs labelled images: "
                              "use --images digits or --images folder:PATH (one sub-folder per class)")
    if len(labels) != len(images):
        raise ExperimentError(f"{len(images)} images but {len(labels)} labels")
    if int(labels.max()) >= model.classes:
        raise ExperimentError(f"the images have labels up to {int(labels.max())} but the model reads out "
                              f"{model.classes} classes")
    if model.first_scored_step is None:
        raise ExperimentError(f"the readout is silent for all {model.steps} steps, so there is no accuracy to "
                              f"measure; raise the spec's steps (--set steps=N)")
    return model.first_scored_step
