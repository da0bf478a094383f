"""What a protocol measured: one `Row` per value, collected in an `ExperimentResult`
with what its figures need (presentation windows, values pinned at a window's end)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .protocol import ExperimentError  # noqa: F401 (re-exported)

COLUMNS = ("protocol", "variant", "area", "level", "step", "ms", "measure", "value", "weights")


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


@dataclass(frozen=True)
class ModelInfo:
    """What the model-level figures draw: per area the steps at which it is present, the
    connections (source, target, delay in steps, kind) and the weights by connection kind."""

    present: dict[str, tuple[bool, ...]]
    edges: tuple[tuple[str, str, int, str], ...]
    weights: dict[str, np.ndarray]


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
    detail: str = ""  # the protocol's settings that change what is shown (the noise's kind and mode)
    windows: dict = field(default_factory=dict)  # level -> [(first step, end step)] the image is shown
    pinned: set = field(default_factory=set)  # (variant, area, level, measure) at the last step measured
    classes: dict[str, int] = field(default_factory=dict)  # per variant: readout classes (chance lines)
    models: dict[str, ModelInfo] = field(default_factory=dict)  # per variant, for model-level figures

    def all_areas(self) -> list[str]:
        """The areas of all variants, in order of first appearance."""
        return list(dict.fromkeys(a for v in self.variants for a in self.areas[v]))

    def values(self, measure: str) -> dict[str, dict[str, np.ndarray]]:
        """A scalar measure by level: {variant: {area: array aligned with `levels`}}, NaN where missing."""
        index = {lv: i for i, lv in enumerate(self.levels)}
        out: dict[str, dict[str, np.ndarray]] = {}
        for row in self.rows:
            if row.measure != measure or row.step is not None or row.level is None or row.level not in index:
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


class Recorder:
    """Collects the rows of one variant, and notes values pinned at a window's end."""

    def __init__(self, protocol: str, variant: str, dt: float):
        self.protocol, self.variant, self.dt = protocol, variant, dt
        self.rows: list[Row] = []
        self.pinned: set = set()
        self.windows: dict = {}  # level -> [(first step, end step)] in which the image is shown
        self.branches: list[Recorder] = []

    def branch(self, label: str) -> "Recorder":
        """A recorder for a derived variant (`ffonly`'s `full` and `ffonly` of each variant), whose
        rows, pins and windows are collected with this one's."""
        name = label if self.variant == "default" else f"{self.variant} {label}"
        sub = Recorder(self.protocol, name, self.dt)
        sub.windows = self.windows
        self.branches.append(sub)
        return sub

    def shown(self, level, *windows: tuple[int, int]) -> None:
        """Note the steps [first, end) at which the image is shown at this level (shaded in figures)."""
        self.windows[level] = [tuple(int(t) for t in w) for w in windows]

    def scalar(self, area: str, level, measure: str, value: float) -> None:
        self.rows.append(Row(self.protocol, self.variant, area, level, None, None, measure, float(value)))

    def course(self, area: str, level, measure: str, values: np.ndarray, first: int = 0) -> None:
        for t in range(first, len(values)):
            self.rows.append(Row(self.protocol, self.variant, area, level, t, t * self.dt, measure,
                                 float(values[t])))

    def pin(self, area: str, level, *measures: str) -> None:
        """Flag these values as found at the last step of their window (the true one may lie beyond)."""
        self.pinned.update((self.variant, area, level, m) for m in measures)
