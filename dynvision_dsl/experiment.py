"""`dynv experiment`: probe compiled models with DynVision's stimulus protocols
and write every measured value as a tidy CSV plus one PNG per measure.

    models = {"fast": dynvision_dsl.compile(spec, {"tau": "2 ms"}), "slow": dynvision_dsl.compile(spec)}
    result = run_protocol("duration", models, images)
    result.values("normalised")["fast"]["V1"]      # one value per level
    plot_result(result, "runs/exp")

Time is counted in model steps from the first frame (the model's own `idle`
steps run before it and are not recorded); ms = step * dt. Stimuli are
(B, T, C, H, W) tensors in which blank frames are zeros. The response of an
area at a step is mean |r| over channels and space, averaged over the images
(an area that is still silent responds 0).

Protocols (`levels` in brackets are the defaults):

- duration [1, 2, 4, 8, 16 steps]: `intro` blank steps (40), the image for d
  steps, blank up to a common end intro + max(d) + max(10, steps). `summed` is the
  response summed from onset to the end (the intro is the same baseline for
  every duration, so it is left out); `normalised` is `summed` divided by its
  largest value over the durations (per variant and area; NaN for an area
  that never responds): temporal summation.
- contrast [0.05, 0.1, 0.2, 0.4, 0.7, 1.0]: image' = m + c (image - m), m the
  image's mean intensity, shown from step `intro` to the end,
  T = intro + max(20, steps).
  `peak` is the largest response from onset on; `peak_step` its step counted
  from onset (time to peak; NaN when the area never responds) and `peak_ms`
  the same in ms.
- interval [gaps 1, 2, 4, 8, 16, 32, 64 steps]: after `intro` blank steps, the
  image for `on` (8) steps, a blank gap g, the image again for `on` steps, then
  blank up to a common end intro + 2 on + max(g) + max(10, steps). Windows: two control
  runs, a blank one and one with a single presentation, give each area's
  latency L: the first step from onset at which the evoked response (single
  minus blank) exceeds 10% of its peak (measure `latency`, also `latency_ms`,
  with an empty level; NaN when the image evokes nothing). With onsets o1 = intro
  and o2 = intro + on + g, `peak1` is the peak response over [o1 + L, o2 + L) and
  `peak2` the peak over [o2 + L, o2 + L + on + g) (both clipped to the run);
  `ratio` = peak2 / peak1 (NaN when peak1 is 0 or a window is empty). The
  peaks are of the raw responses; the blank run is in the CSV
  (`blank_response`) for baseline-subtracted analyses. Adaptation gives
  ratio < 1 at short gaps, recovering with the gap; a leaky area without
  adaptation summates (ratio >= 1 at short gaps).
- noise [SNR 0.25, 0.5, 1, 2, 4, 8]: the image plus Gaussian noise of
  sigma = std(image) / SNR, drawn afresh at every step (not clipped), for
  `steps` steps without intro. Each image has its own seeded noise pattern
  (seed, image index), the same at every SNR and for every variant, so the
  curves differ only by the noise's amplitude. `accuracy` is the share of
  images whose logits' argmax at the last step is their label (area
  `readout`, empty step); the same per step is `accuracy` with a step, for
  the steps at which the readout is present. Needs labelled images.

A NaN or inf in any area stops the experiment with `NonFiniteError`, naming
the area, the step and the stimulus's item in its forward pass.

Every protocol also records the per-step time courses (measure `response`;
`blank_response` and `control_response` for the interval's control runs).
The blank intro (`--intro`, 40 steps) exists because biases make a model
respond to a blank screen: its baseline, and any adaptation that follows it,
must settle before the first presentation, or the first response is measured
from an unadapted state and every later one looks suppressed. `--on` sets the
interval's presentation length (8 steps), long enough for adaptation to build.

Variants and weights: params start from the checkpoint's, then `--set`, then
each `--sweep` value (several sweeps give their Cartesian product, labelled `a=1 b=x`). Torch is
seeded with --seed before each variant is compiled. A checkpoint whose
tensors fit exactly is loaded strictly. A checkpoint must prove to be this
spec's: fit one variant exactly, or the model without the sweep (the spec with
the checkpoint's params and `--set`); otherwise it is refused (another spec's
weights would run on mostly random ones) unless `partial=True`
(`--partial-weights`). Then a variant that does not fit (a `recurrence=none`
variant of a model trained with `full`) gets every tensor whose name and shape
match, the rest keep their seeded initial values; one line on stderr and the
CSV's `weights` column say so (`seeded SEED` without a checkpoint,
`checkpoint`, or `checkpoint partial: K/N loaded, S seeded, U unused`, U
counting the checkpoint's tensors the variant has no use for).

Outputs in --out: NAME.csv (columns protocol, variant, area, level, step, ms,
measure, value, weights), NAME_<measure>.png per scalar measure (one subplot
per area, one curve per variant, log-x when the levels span a decade) and
NAME_timecourse.png (response against time, one curve per level), and NAME.json
(provenance: spec path and sha256, --set values, images, checkpoint, seed, versions).
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from . import checkpoint as ckpt_mod
from .checkpoint import CheckpointError, LoadReport, load_weights  # noqa: F401 (re-exported)
from .science import data as data_mod
from .diagnostics import DynError
from .util.files import RunFolder, atomic_open, atomic_targets, check_replaceable, write_atomic
from .util.params import SetParams, recorded
from .util.provenance import describe, metadata
from .util.source import read_spec_text
from .model import DynModel, first_non_finite
from .pipeline import compile as compile_spec
from .plot import _new_figure, _palette

INTRO = 40  # blank steps before the first presentation (duration, contrast, interval): the
            # bias-driven baseline and any adaptation settle first (80 ms at dt = 2 ms)
ON = 8  # the interval's presentation length, in steps: long enough for adaptation to build
THRESHOLD = 0.1  # share of the control peak that defines the interval protocol's latency
COLUMNS = ("protocol", "variant", "area", "level", "step", "ms", "measure", "value", "weights")


class ExperimentError(ValueError):
    """A problem the user can fix (bad levels, unlabelled images for noise, ...)."""


@dataclass(frozen=True)
class Protocol:
    """A protocol's defaults: its levels, whether they are whole steps, its scalar measures."""

    name: str
    levels: tuple[float, ...]
    integer: bool
    measures: tuple[str, ...]  # scalar measures drawn against the level (one PNG each)
    main: str  # the measure printed as a table
    axis: str  # the level's axis label
    minimum: float  # smallest allowed level
    strict: bool = False  # levels must exceed `minimum` rather than reach it


PROTOCOLS: dict[str, Protocol] = {
    "duration": Protocol("duration", (1, 2, 4, 8, 16), True, ("summed", "normalised"), "normalised",
                         "duration (steps)", 1),
    "contrast": Protocol("contrast", (0.05, 0.1, 0.2, 0.4, 0.7, 1.0), False, ("peak", "peak_step", "peak_ms"),
                         "peak", "contrast", 0.0),
    "interval": Protocol("interval", (1, 2, 4, 8, 16, 32, 64), True, ("ratio", "peak1", "peak2"), "ratio",
                         "gap (steps)", 0),
    "noise": Protocol("noise", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), False, ("accuracy",), "accuracy",
                      "signal-to-noise ratio", 0.0, strict=True),
}


@dataclass(frozen=True)
class Row:
    """One measured value; `step` (and `ms`) only for time courses, `level` None for level-free values."""

    protocol: str
    variant: str
    area: str
    level: float | None
    step: int | None
    ms: float | None
    measure: str
    value: float


@dataclass
class ExperimentResult:
    """Every value a protocol measured, with what is needed to read and draw them."""

    protocol: str
    levels: list[float]
    variants: list[str]
    areas: dict[str, tuple[str, ...]]  # per variant
    dt: dict[str, float]  # per variant, ms per step
    rows: list[Row] = field(default_factory=list)
    weights: dict[str, str] = field(default_factory=dict)  # per variant: where its weights came from
    title: str = ""
    source: str = ""  # one line of provenance under the title: --set values, images, checkpoint

    def all_areas(self) -> list[str]:
        """The areas of all variants, in order of first appearance."""
        return list(dict.fromkeys(a for v in self.variants for a in self.areas[v]))

    def values(self, measure: str) -> dict[str, dict[str, np.ndarray]]:
        """A scalar measure by level: {variant: {area: array aligned with `levels`}}, NaN where missing."""
        index = {lv: i for i, lv in enumerate(self.levels)}
        out: dict[str, dict[str, np.ndarray]] = {}
        for row in self.rows:
            if row.measure != measure or row.step is not None or row.level is None:
                continue
            arr = out.setdefault(row.variant, {}).setdefault(row.area, np.full(len(self.levels), np.nan))
            arr[index[row.level]] = row.value
        return out

    def scalar(self, measure: str, variant: str, area: str) -> float:
        """A level-free value (the interval's `latency`)."""
        for row in self.rows:
            if (row.measure, row.variant, row.area, row.level, row.step) == (measure, variant, area, None, None):
                return row.value
        raise KeyError(f"no level-free '{measure}' for {variant}/{area}")

    def timecourse(self, variant: str, area: str, level: float | None, measure: str = "response") -> np.ndarray:
        """A per-step measure over the steps of one run (NaN at steps without a value)."""
        picked = [r for r in self.rows if r.step is not None and r.measure == measure and r.variant == variant
                  and r.area == area and r.level == level]
        if not picked:
            raise KeyError(f"no '{measure}' time course for {variant}/{area} at level {level}")
        out = np.full(max(r.step for r in picked) + 1, np.nan)
        for r in picked:
            out[r.step] = r.value
        return out


# ------------------------------------------------------------------ simulation
def _responses(model: DynModel, x: torch.Tensor, areas: Iterable[str]) -> tuple[torch.Tensor, dict]:
    """Logits (B, T, classes) and per area the mean |r| per image and step (B, T), reducing
    each recorded step as soon as the simulation returns so that no (B, T, C, H, W) is stacked."""
    areas = list(areas)
    logits, raw = model.simulate(x, record=areas)
    batch = x.shape[0]
    zero = x.new_zeros(batch, dtype=torch.float64)
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
class _Courses:
    """Mean responses (T,) per area over all images, and for noise the share of images
    classified right at each step (T,)."""

    response: dict[str, np.ndarray]
    correct: np.ndarray | None


def _simulate(model: DynModel, images: torch.Tensor, levels: list,
              make: Callable[[torch.Tensor, torch.Tensor, object], torch.Tensor], batch: int,
              labels: torch.Tensor | None = None) -> list[_Courses]:
    """Show `make(images[idx], idx, level)` for every level and image, at most `batch` stimuli
    per forward pass (levels share a pass when the images are few); one _Courses per level.
    Stimuli go to the model's device; the sums come back to the CPU."""
    n = images.shape[0]
    device = next((t.device for t in model.parameters()), torch.device("cpu"))
    pairs = [(k, i) for k in range(len(levels)) for i in range(n)]
    total: list[dict[str, torch.Tensor]] = [{} for _ in levels]
    correct: list[torch.Tensor | None] = [None for _ in levels]
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        groups = [(k, torch.tensor([i for kk, i in chunk if kk == k])) for k in dict.fromkeys(k for k, _ in chunk)]
        x = torch.cat([make(images[idx], idx, levels[k]) for k, idx in groups]).to(device)
        logits, resp = _responses(model, x, model.areas)
        at = 0
        for k, idx in groups:
            part = slice(at, at + len(idx))
            at += len(idx)
            for area, r in resp.items():
                s = r[part].sum(0).cpu()
                total[k][area] = total[k][area] + s if area in total[k] else s
            if labels is not None:
                hit = (logits[part].argmax(-1).cpu() == labels[idx].unsqueeze(1)).double().sum(0)
                correct[k] = hit if correct[k] is None else correct[k] + hit
    return [_Courses({a: (v / n).numpy() for a, v in total[k].items()},
                     None if correct[k] is None else (correct[k] / n).numpy()) for k in range(len(levels))]


def _noise_pattern(seed: int, index: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise of one image, seeded by (seed, image index) only."""
    state = np.random.SeedSequence([seed % 2 ** 32, index]).generate_state(2, dtype=np.uint32)
    g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randn(shape, generator=g)


# ----------------------------------------------------------------- protocols
def check_levels(protocol: str, levels: Iterable[float] | None) -> list[float]:
    """The protocol's levels (defaults when None), validated, sorted and without repeats."""
    proto = _protocol(protocol)
    if levels is None:
        return list(proto.levels)
    out = []
    for lv in levels:
        if proto.integer:
            if float(lv) != int(lv):
                raise ExperimentError(f"{protocol} levels are whole steps, got {lv}")
            lv = int(lv)
        else:
            lv = float(lv)
        if not math.isfinite(lv) or lv < proto.minimum or (proto.strict and lv == proto.minimum):
            bound = f"> {proto.minimum:g}" if proto.strict else f">= {proto.minimum:g}"
            raise ExperimentError(f"{protocol} levels must be {bound}, got {lv:g}")
        out.append(lv)
    if not out:
        raise ExperimentError(f"no levels given for {protocol}")
    return sorted(set(out))


def parse_levels(protocol: str, text: str) -> list[float]:
    """`--levels 1,2,4` as numbers (whole steps for duration and interval)."""
    proto = _protocol(protocol)
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(int(part) if proto.integer else float(part))
        except ValueError:
            kind = "whole numbers of steps" if proto.integer else "numbers"
            raise ExperimentError(f"--levels for {protocol} must be {kind} separated by commas, got '{part}'")
    return check_levels(protocol, values)


def _protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ExperimentError(f"unknown protocol '{name}' (one of {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]


def _peak(course: np.ndarray, lo: int, hi: int) -> tuple[float, int | None]:
    """Largest value in course[lo:hi] and its index (None for an empty window)."""
    lo, hi = max(lo, 0), min(hi, len(course))
    if hi <= lo:
        return math.nan, None
    i = int(np.argmax(course[lo:hi]))
    return float(course[lo + i]), lo + i


def _latency(evoked: np.ndarray, onset: int) -> float:
    """Steps from onset to the first evoked response (stimulus run minus blank run) above
    THRESHOLD of its peak (NaN if the stimulus evokes nothing)."""
    after = evoked[onset:]
    peak = after.max() if len(after) else 0.0
    if not peak > 0:
        return math.nan
    return float(np.argmax(after > THRESHOLD * peak))


class _Recorder:
    """Collects rows of one variant."""

    def __init__(self, protocol: str, variant: str, dt: float):
        self.protocol, self.variant, self.dt = protocol, variant, dt
        self.rows: list[Row] = []

    def scalar(self, area: str, level, measure: str, value: float) -> None:
        self.rows.append(Row(self.protocol, self.variant, area, level, None, None, measure, float(value)))

    def course(self, area: str, level, measure: str, values: np.ndarray, first: int = 0) -> None:
        for t in range(first, len(values)):
            self.rows.append(Row(self.protocol, self.variant, area, level, t, t * self.dt, measure,
                                 float(values[t])))


def _blank(img: torch.Tensor, steps: int) -> torch.Tensor:
    return img.new_zeros((img.shape[0], steps) + tuple(img.shape[1:]))


def _duration(model, images, levels, batch, rec: _Recorder, intro: int = INTRO, **_) -> None:
    T = intro + max(levels) + max(10, model.steps)

    def make(img, idx, d):
        x = _blank(img, T)
        x[:, intro:intro + d] = img.unsqueeze(1)
        return x
    runs = _simulate(model, images, levels, make, batch)
    for area in model.areas:
        summed = [float(run.response[area][intro:].sum()) for run in runs]  # from onset: the intro is baseline
        top = max(summed)
        for d, run, value in zip(levels, runs, summed):
            rec.course(area, d, "response", run.response[area])
            rec.scalar(area, d, "summed", value)
            rec.scalar(area, d, "normalised", value / top if top > 0 else math.nan)


def _contrast(model, images, levels, batch, rec: _Recorder, intro: int = INTRO, **_) -> None:
    T = intro + max(20, model.steps)

    def make(img, idx, c):
        m = img.mean(dim=tuple(range(1, img.dim())), keepdim=True)
        x = _blank(img, T)
        x[:, intro:] = (m + c * (img - m)).unsqueeze(1)
        return x
    runs = _simulate(model, images, levels, make, batch)
    for area in model.areas:
        for c, run in zip(levels, runs):
            course = run.response[area]
            rec.course(area, c, "response", course)
            peak, at = _peak(course, intro, T)
            step = at - intro if peak > 0 else math.nan
            rec.scalar(area, c, "peak", peak)
            rec.scalar(area, c, "peak_step", step)
            rec.scalar(area, c, "peak_ms", step * rec.dt)


def _interval(model, images, levels, batch, rec: _Recorder, on: int = ON, intro: int = INTRO, **_) -> None:
    if on < 1:
        raise ExperimentError(f"the interval protocol needs on >= 1 step, got {on}")
    T = intro + 2 * on + max(levels) + max(10, model.steps)

    def make(img, idx, gap):  # "blank": no image; "control": a single presentation
        x = _blank(img, T)
        if gap != "blank":
            x[:, intro:intro + on] = img.unsqueeze(1)
        if gap not in ("blank", "control"):
            x[:, intro + on + gap:intro + 2 * on + gap] = img.unsqueeze(1)
        return x
    blank, control, *runs = _simulate(model, images, ["blank", "control"] + list(levels), make, batch)
    for area in model.areas:
        rec.course(area, None, "blank_response", blank.response[area])
        rec.course(area, None, "control_response", control.response[area])
        lat = _latency(control.response[area] - blank.response[area], intro)
        rec.scalar(area, None, "latency", lat)
        rec.scalar(area, None, "latency_ms", lat * rec.dt)
        for gap, run in zip(levels, runs):
            course = run.response[area]
            onset2 = intro + on + gap
            rec.course(area, gap, "response", course)
            if math.isnan(lat):
                p1 = p2 = math.nan
            else:
                L = int(lat)
                p1, _ = _peak(course, intro + L, onset2 + L)
                p2, _ = _peak(course, onset2 + L, onset2 + L + on + gap)
            rec.scalar(area, gap, "peak1", p1)
            rec.scalar(area, gap, "peak2", p2)
            rec.scalar(area, gap, "ratio", p2 / p1 if p1 > 0 and not math.isnan(p2) else math.nan)


def _noise(model, images, levels, batch, rec: _Recorder, labels=None, seed: int = 0, **_) -> None:
    if labels is None:
        raise ExperimentError("the noise protocol measures accuracy and needs labelled images: "
                              "use --images digits or --images folder:PATH (one sub-folder per class)")
    if len(labels) != len(images):
        raise ExperimentError(f"{len(images)} images but {len(labels)} labels")
    if int(labels.max()) >= model.classes:
        raise ExperimentError(f"the images have labels up to {int(labels.max())} but the model reads out "
                              f"{model.classes} classes")
    T = model.steps
    first = model.readout_from
    if first is None or first >= T:
        raise ExperimentError(f"the readout is silent for all {T} steps, so there is no accuracy to measure; "
                              f"raise the spec's steps (--set steps=N)")

    def make(img, idx, snr):
        sigma = img.flatten(1).std(1, correction=0) / snr
        z = torch.stack([_noise_pattern(seed, int(i), (T,) + tuple(img.shape[1:])) for i in idx]).to(img.dtype)
        return img.unsqueeze(1) + sigma.view(-1, *([1] * (z.dim() - 1))) * z
    runs = _simulate(model, images, levels, make, batch, labels)
    for snr, run in zip(levels, runs):
        for area in model.areas:
            rec.course(area, snr, "response", run.response[area])
        rec.course("readout", snr, "accuracy", run.correct, first=first)
        rec.scalar("readout", snr, "accuracy", run.correct[-1])


_RUNNERS = {"duration": _duration, "contrast": _contrast, "interval": _interval, "noise": _noise}


def run_protocol(name: str, variants: dict[str, DynModel],
                 images: torch.Tensor | Callable[[tuple[int, int, int]], torch.Tensor],
                 labels: torch.Tensor | None = None, levels: Iterable[float] | None = None, batch: int = 32,
                 seed: int = 0, on: int = ON, intro: int = INTRO, weights: dict[str, str] | None = None,
                 title: str | None = None) -> ExperimentResult:
    """Run protocol `name` on every variant (label -> model) with `images` (N, C, H, W) in
    [0, 1], or a function giving them for a model's input shape (for variants of other sizes).
    `on` is the interval's presentation length and `intro` the blank steps before the first
    presentation (duration, contrast, interval), both in steps."""
    proto = _protocol(name)
    levels = check_levels(name, levels)
    if batch < 1:
        raise ExperimentError(f"the batch must hold at least one image, got {batch}")
    if intro < 0:
        raise ExperimentError(f"the blank intro cannot be negative, got {intro} steps")
    if not variants:
        raise ExperimentError("no variants to run")
    result = ExperimentResult(name, levels, list(variants), {}, {}, weights=dict(weights or {}))
    for label, model in variants.items():
        shape = tuple(model.input_shape)
        x = images(shape) if callable(images) else images
        if tuple(x.shape[1:]) != shape:
            raise ExperimentError(f"variant {label} takes images of shape {shape}, got {tuple(x.shape[1:])}")
        if len(x) == 0:
            raise ExperimentError("no images to show")
        rec = _Recorder(name, label, float(model.dt))
        model.eval()
        with torch.no_grad():
            _RUNNERS[proto.name](model, x.float(), levels, batch, rec, labels=labels, seed=seed, on=on,
                                 intro=intro)
        result.rows += rec.rows
        result.areas[label] = tuple(model.areas)
        result.dt[label] = float(model.dt)
    program = getattr(next(iter(variants.values())), "program", None)
    result.title = title if title is not None else program.model.name if program else name
    return result


# ------------------------------------------------------------------- variants
@dataclass
class Variant:
    """One compiled variant: its label, the params it was compiled with, and its weights' origin."""

    label: str
    params: dict[str, str]
    model: DynModel
    weights: str


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """`NAME=V1,V2,...` as (NAME, [V1, V2, ...])."""
    name, eq, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not name.strip() or not items:
        raise ExperimentError(f"--sweep needs NAME=V1,V2,..., got '{text}'")
    return name.strip(), items


def sweep_params(base: dict[str, str], sweeps: list[tuple[str, list[str]]]) -> list[tuple[str, dict[str, str]]]:
    """(label, params) per point of the sweeps' Cartesian product; label 'default' without sweeps."""
    names = [n for n, _ in sweeps]
    if len(set(names)) != len(names):
        raise ExperimentError(f"--sweep names a param twice: {', '.join(names)}")
    base = SetParams(base, getattr(base, "origins", {}))  # errors quote each param as it was given
    if not sweeps:
        return [("default", base)]
    out = []
    for combo in itertools.product(*(values for _, values in sweeps)):
        label = " ".join(f"{n}={v}" for n, v in zip(names, combo))
        point = SetParams(dict(zip(names, combo)), {n: f"--sweep {n}={v}" for n, v in zip(names, combo)})
        out.append((label, base | point))
    return out


def make_variants(spec: str | Path, params: dict[str, str] | None = None,
                  sweeps: list[tuple[str, list[str]]] | None = None, seed: int = 0,
                  checkpoint: ckpt_mod.Checkpoint | None = None, file: str | None = None,
                  log: Callable[[str], None] | None = None, partial: bool = False,
                  source: str = "the checkpoint") -> list[Variant]:
    """Compile one model per sweep point (params: the checkpoint's, then `params`, then the
    sweep's), seeding torch before each, and load the checkpoint's weights (see load_variant_weights)."""
    base = (recorded(checkpoint.params, source) if checkpoint else SetParams()) | (params or {})
    out = []
    for label, p in sweep_params(base, sweeps or []):
        torch.manual_seed(seed)
        try:
            model = compile_spec(spec, p, file=file)
        except DynError:
            if sweeps:
                print(f"dynv: variant {label} does not compile:", file=sys.stderr)
            raise
        out.append(Variant(label, p, model, f"seeded {seed}"))
    if checkpoint is not None:
        unswept = (lambda: out[0].model) if not sweeps else (lambda: compile_spec(spec, base, file=file))
        load_variant_weights(out, checkpoint, unswept, partial, source, log)
        for variant in out:  # the images are normalised as they were in training
            variant.model.input_transform = data_mod.recorded(checkpoint.extra)
    return out


def load_variant_weights(variants: list[Variant], checkpoint: ckpt_mod.Checkpoint, base: Callable[[], DynModel],
                    partial: bool, source: str, log: Callable[[str], None] | None) -> None:
    """Load the checkpoint into every variant. Unless `partial`, it must first prove to be this
    spec's: it fits one variant exactly, or the model without the sweep (`base()`); then a sweep
    variant that changes shapes loads every tensor whose name and shape match."""
    state = checkpoint.model
    reports = [ckpt_mod.fit(v.model, state) for v in variants]
    if not partial and not any(r.strict for r in reports):
        try:
            model = base()
        except DynError:
            raise CheckpointError(f"{source} fits none of the variants exactly; is it for this spec? pass "
                                  f"--partial-weights to load the tensors that fit") from None
        ckpt_mod.load_weights(model, state, partial=False, source=source)  # raises: it does not fit
    for v in variants:
        report = ckpt_mod.load_weights(v.model, state, partial=True, source=source)
        v.weights = report.describe()
        if not report.strict and log is not None:
            kept = f" ({', '.join(report.seeded)})" if report.seeded else ""
            log(f"note: variant {v.label} does not fit the checkpoint: {report.loaded} of {report.total} "
                f"tensors loaded, {len(report.seeded)} keep their seeded initial values{kept}, "
                f"{len(report.unused)} of the checkpoint's are unused")


# --------------------------------------------------------------------- images
@dataclass
class Images:
    """Where experiment images come from; `get(shape)` loads them (cached) for a model's input."""

    source: str
    n: int
    seed: int = 0
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def get(self, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (N, C, H, W) and labels (N,) or None for a single file."""
        shape = tuple(shape)
        if shape not in self._cache:
            self._cache[shape] = self._load(shape)
        return self._cache[shape]

    def _load(self, shape):
        from .stimuli import load_image

        src = self.source
        if src == "digits" or src.startswith("folder:") or Path(src).is_dir():
            data = data_mod.load(src, shape)
            if src == "digits":
                data = data_mod.split(data, 0.2, seed=0)[1]
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))[:self.n]
            return data.stack(pick), data.labels[pick]
        if not Path(src).is_file():
            raise ExperimentError(f"no image at '{src}'; --images takes digits, folder:PATH or an image file")
        return load_image(src, *shape).unsqueeze(0), None


# ---------------------------------------------------------------------- plots
def _level_text(level) -> str:
    return "" if level is None else str(level) if isinstance(level, int) else f"{level:g}"


def _log_x(levels: list[float]) -> bool:
    return min(levels) > 0 and max(levels) / min(levels) >= 10


def _grid(n: int, cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


_YLABEL = {"summed": "summed mean |r|", "normalised": "summed / max", "peak": "peak mean |r|",
           "peak_step": "time to peak (steps)", "peak_ms": "time to peak (ms)", "ratio": "peak2 / peak1",
           "peak1": "peak 1 mean |r|", "peak2": "peak 2 mean |r|", "accuracy": "accuracy"}


def _legend_width(labels: Iterable[str]) -> float:
    """Inches to the right of the panels for a legend of these labels (7 pt text)."""
    return min(4.0, max(1.3, 0.55 + 0.058 * max((len(str(t)) for t in labels), default=0)))


def _source_line(result: ExperimentResult) -> str:
    return f"\n{result.source}" if result.source else ""


def _source_room(result: ExperimentResult) -> float:
    """Inches for the title's provenance line."""
    return 0.2 if result.source else 0.0


def _margins(fig, legend_w: float, title_extra: float = 0.0) -> None:
    """Fixed margins in inches: room for labels on the left and below, the title, the legend."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=0.75 / w, right=1 - legend_w / w, top=1 - (0.5 + title_extra) / h, bottom=0.5 / h,
                        wspace=0.4, hspace=0.6)


def plot_measure(result: ExperimentResult, measure: str, path: str | Path, dpi: int = 110) -> Path:
    """One subplot per area: the measure against the level, one curve per variant."""
    path = Path(path)
    table = result.values(measure)
    areas = [a for a in result.all_areas() + ["readout"] if any(a in table.get(v, {}) for v in result.variants)]
    rows, cols = _grid(max(len(areas), 1))
    legend_w = _legend_width(result.variants)
    fig = _new_figure(0.75 + 3.1 * cols + legend_w, 0.65 + _source_room(result) + 2.6 * rows, dpi)
    colors = _palette(len(result.variants))
    levels = np.array(result.levels, dtype=float)
    handles: dict[str, object] = {}
    for i, area in enumerate(areas):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, variant in enumerate(result.variants):
            ys = table.get(variant, {}).get(area)
            if ys is None:
                continue
            (line,) = ax.plot(levels, ys, color=colors[j], marker="o", markersize=3, lw=1.3, label=variant)
            handles.setdefault(variant, line)
        if _log_x(result.levels):
            ax.set_xscale("log")
            ax.set_xticks(levels)
            ax.set_xticklabels([_level_text(lv) for lv in result.levels])
            ax.minorticks_off()
        ax.set_title(area, fontsize=9)
        ax.set_xlabel(PROTOCOLS[result.protocol].axis, fontsize=8)
        ax.set_ylabel(_YLABEL.get(measure, measure), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, color="#e5e5e5", lw=0.6)
    if not areas:
        fig.text(0.5, 0.5, f"no values of {measure}", ha="center", va="center", color="#777777")
    fig.suptitle(f"{result.title}: {result.protocol}, {measure}{_source_line(result)}", fontsize=10,
                 parse_math=False)
    _margins(fig, legend_w, _source_room(result))
    if handles:
        fig.legend(handles=[handles[v] for v in result.variants if v in handles], loc="upper right",
                   bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(), 1 - 0.55 / fig.get_figheight()), fontsize=7,
                   frameon=False, title="variant", title_fontsize=7.5)
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return path


def plot_timecourse(result: ExperimentResult, path: str | Path, dpi: int = 110, max_panels: int = 16) -> Path:
    """Response against time (ms), one curve per level: a grid variant x area when it has at
    most `max_panels` panels, otherwise the first variant only."""
    path = Path(path)
    areas = result.all_areas()
    variants = result.variants if len(result.variants) * max(len(areas), 1) <= max_panels else result.variants[:1]
    courses: dict[tuple[str, str, object], list[tuple[int, float]]] = {}
    for r in result.rows:
        if r.measure == "response" and r.variant in variants:
            courses.setdefault((r.variant, r.area, r.level), []).append((r.step, r.value))
    from matplotlib import colormaps

    rows, cols = len(variants), max(len(areas), 1)
    axis = PROTOCOLS[result.protocol].axis
    legend_w = _legend_width([axis])
    fig = _new_figure(0.75 + 2.8 * cols + legend_w, 0.65 + _source_room(result) + 2.2 * rows, dpi)
    n = len(result.levels)
    colors = [colormaps["viridis"](0.9 * i / max(n - 1, 1)) for i in range(n)]
    handles: dict[int, object] = {}
    for i, variant in enumerate(variants):
        for j, area in enumerate(areas):
            ax = fig.add_subplot(rows, cols, i * cols + j + 1)
            for k, level in enumerate(result.levels):
                pts = sorted(courses.get((variant, area, level), []))
                if not pts:
                    continue
                t = np.array([p[0] for p in pts]) * result.dt[variant]
                (line,) = ax.plot(t, [p[1] for p in pts], color=colors[k], lw=1.1, label=_level_text(level))
                handles.setdefault(k, line)
            if i == 0:
                ax.set_title(area, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{variant}\nmean |r|" if len(variants) > 1 else "mean |r|", fontsize=8)
            if i == rows - 1:
                ax.set_xlabel("time (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, color="#e5e5e5", lw=0.6)
    shown = "" if len(variants) == len(result.variants) else f" (variant {variants[0]})"
    fig.suptitle(f"{result.title}: {result.protocol}, response time courses{shown}{_source_line(result)}",
                 fontsize=10, parse_math=False)
    _margins(fig, legend_w, _source_room(result))
    if handles:
        fig.legend(handles=[handles[k] for k in sorted(handles)], loc="upper right",
                   bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(), 1 - 0.55 / fig.get_figheight()), fontsize=7,
                   frameon=False, title=axis, title_fontsize=7.5)
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return path


def output_paths(protocol: str, out_dir: str | Path, name: str | None = None) -> list[Path]:
    """The files an experiment writes: NAME.csv, NAME_<measure>.png per measure, NAME_timecourse.png
    and NAME.json (where the values came from: spec, params, images, weights, versions)."""
    out_dir, name = Path(out_dir), name or protocol
    return ([out_dir / f"{name}.csv"] + [out_dir / f"{name}_{m}.png" for m in _protocol(protocol).measures]
            + [out_dir / f"{name}_timecourse.png", out_dir / f"{name}.json"])


def plot_result(result: ExperimentResult, out_dir: str | Path, name: str | None = None) -> list[Path]:
    """Write NAME_<measure>.png for each scalar measure and NAME_timecourse.png; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(result.protocol, out_dir, name)[1:-1]
    for measure, path in zip(PROTOCOLS[result.protocol].measures, paths):
        plot_measure(result, measure, path)
    plot_timecourse(result, paths[-1])
    return paths


# ------------------------------------------------------------------ CSV, table
def _num(v: float | None) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return str(v)
    return "nan" if math.isnan(v) else f"{v:.9g}"


def to_csv(result: ExperimentResult) -> str:
    """The tidy table: one row per measured value (COLUMNS)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in result.rows:
        w.writerow([r.protocol, r.variant, r.area, _level_text(r.level), "" if r.step is None else r.step,
                    _num(r.ms), r.measure, _num(r.value), result.weights.get(r.variant, "")])
    return buf.getvalue()


def write_csv(result: ExperimentResult, path: str | Path, overwrite: bool = False) -> Path:
    write_atomic(path, to_csv(result), overwrite=overwrite)
    return Path(path)


def format_table(result: ExperimentResult, measure: str | None = None) -> str:
    """The main measure as text: one line per variant and area, one column per level."""
    measure = measure or PROTOCOLS[result.protocol].main
    table = result.values(measure)
    head = ["variant", "area"] + [_level_text(lv) for lv in result.levels]
    lines = [head]
    for variant in result.variants:
        for area, vals in table.get(variant, {}).items():
            lines.append([variant, area] + ["-" if math.isnan(v) else f"{v:.4g}" for v in vals])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [f"{measure} by {PROTOCOLS[result.protocol].axis}"]
    for i, line in enumerate(lines):
        text.append("  ".join(c.ljust(widths[k]) if k < 2 else c.rjust(widths[k]) for k, c in enumerate(line)).rstrip())
        if i == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


# ------------------------------------------------------------------------ CLI
def run_cli(args) -> int:
    """`dynv experiment`: exit status 0, or 1 with a `dynv: ...` line for a problem the user can fix."""
    try:
        with ExitStack() as stack:
            return _run_cli(args, stack)
    except (ExperimentError, CheckpointError, FileNotFoundError) as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1


def _run_cli(args, stack: ExitStack) -> int:
    from .util.params import parse_set as _params

    spec = Path(args.file)
    text = read_spec_text(spec)  # a missing or binary spec is a DynError naming it
    name = args.name
    levels = parse_levels(name, args.levels) if args.levels else check_levels(name, None)
    if args.n_images < 1:
        raise ExperimentError(f"--n-images must be at least 1, got {args.n_images}")
    if args.batch < 1:
        raise ExperimentError(f"--batch must be at least 1, got {args.batch}")
    sweeps = [parse_sweep(s) for s in args.sweep or []]
    params = _params(args.set)
    out = Path(args.out or f"runs/experiment-{name}-{spec.stem}")
    targets = output_paths(name, out, name)
    # from here to the end the folder is ours, and known to be writable before anything is simulated
    folder = stack.enter_context(RunFolder(out, "dynv experiment", tuple(t.name for t in targets)))
    for note in folder.notes:
        print(note, file=sys.stderr)
    clash = [str(t) for t in targets if os.path.lexists(t)]
    if clash and not args.force:
        raise ExperimentError(f"{', '.join(clash)} exist{'s' * (len(clash) == 1)}; pass --force to replace "
                              f"{'it' if len(clash) == 1 else 'them'} or choose --out")
    for target in targets:
        check_replaceable(target, overwrite=True)  # a directory or device in the way: say so before simulating
    checkpoint = ckpt_mod.load(args.checkpoint) if args.checkpoint else None
    if name == "noise" and not (args.images == "digits" or args.images.startswith("folder:")
                                or Path(args.images).is_dir()):
        raise ExperimentError("the noise protocol measures accuracy and needs labelled images: "
                              "use --images digits or --images folder:PATH (one sub-folder per class)")
    variants = make_variants(text, params, sweeps, args.seed, checkpoint, file=str(spec),
                             log=lambda line: print(line, file=sys.stderr), partial=args.partial_weights,
                             source=str(args.checkpoint))
    images = Images(args.images, args.n_images, args.seed)
    labels = images.get(tuple(variants[0].model.input_shape))[1]  # the choice of images ignores the shape
    result = run_protocol(name, {v.label: v.model for v in variants}, lambda shape: images.get(shape)[0],
                          labels=labels, levels=levels, batch=args.batch, seed=args.seed,
                          on=args.on, intro=args.intro,
                          weights={v.label: v.weights for v in variants},
                          title=f"{variants[0].model.program.model.name} ({spec.name})")
    stimulus = args.images if Path(args.images).is_file() else f"{args.images} ({args.n_images} images)"
    result.source = describe(params, stimulus, args.checkpoint, args.seed)
    meta = {**metadata("dynv experiment", spec, params, stimulus=stimulus, weights=args.checkpoint, seed=args.seed,
                       command_line=getattr(args, "command_line", None)),
            "protocol": name, "levels": levels, "sweeps": dict(sweeps), "weights_per_variant": result.weights}
    with atomic_targets(targets, overwrite=args.force) as temps:  # all files or none
        write_csv(result, temps[0], overwrite=True)
        for measure, tmp in zip(PROTOCOLS[name].measures, temps[1:-2]):
            plot_measure(result, measure, tmp)
        plot_timecourse(result, temps[-2])
        Path(temps[-1]).write_text(json.dumps(meta, indent=2) + "\n")
    print(format_table(result))
    print("wrote " + ", ".join(str(t) for t in targets))
    return 0
