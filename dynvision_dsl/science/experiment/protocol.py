"""A protocol's row of the one protocol table, the settings every runner reads, and the
checks of its levels. Imports neither torch nor numpy: `dynv` lists the protocols at start-up."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable



class ExperimentError(ValueError):
    """A problem the user can fix (bad levels, unlabelled images for noise, ...)."""

INTRO = 40  # blank steps before the first presentation: the bias-driven baseline and any
            # adaptation settle first (80 ms at dt = 2 ms)
ON = 8  # the interval's presentation length, in steps: long enough for adaptation to build
THRESHOLD = 0.1  # share of the evoked peak that defines an area's latency
NOISES = ("gaussian", "uniform", "gaussiancorr", "poisson", "saltpepper", "phasescrambled")
NOISE_MODES = ("dynamic", "static")


@dataclass(frozen=True)
class Settings:
    """The options a runner may read (each protocol reads the ones it documents)."""

    intro: int = INTRO
    on: int = ON
    seed: int = 0
    noise: str = "gaussian"
    noise_mode: str = "dynamic"

    def check(self) -> "Settings":
        if self.intro < 0:
            raise ExperimentError(f"the blank intro cannot be negative, got {self.intro} steps")
        if self.noise not in NOISES:
            raise ExperimentError(f"unknown noise '{self.noise}' (one of {', '.join(NOISES)})")
        if self.noise_mode not in NOISE_MODES:
            raise ExperimentError(f"unknown noise mode '{self.noise_mode}' (one of {', '.join(NOISE_MODES)})")
        return self


@dataclass(frozen=True)
class Protocol:
    """A protocol: its defaults, its measures, what it draws, and the function that runs it.
    `run(model, images, levels, batch, rec, settings, labels)` records rows in `rec`."""

    name: str
    levels: tuple[float, ...]
    integer: bool
    measures: tuple[str, ...]  # scalar measures drawn against the level (one PNG each)
    main: str  # the measure printed as a table
    axis: str  # the level's axis label
    minimum: float  # smallest allowed level
    run: Callable
    help: str  # one line for `dynv experiment --help`
    strict: bool = False  # levels must exceed `minimum` rather than reach it
    steps_axis: bool = False  # the levels are durations in steps: drawn in ms
    labelled: bool = False  # needs labelled images (measures accuracy)
    figures: tuple[str, ...] = ("timecourse",)  # other figures, by name in science/plot/figures.py
    fixed_levels: bool = False  # the levels come from the images (confusion: the classes), not --levels
    model_info: bool = False  # record ModelInfo (presence, connections, weights) for model-level figures

    def check_levels(self, levels: Iterable[float] | None) -> list[float]:
        """The levels (defaults when None), validated, sorted and without repeats."""
        if levels is None:
            return list(self.levels)
        out = [self._level(lv) for lv in levels]
        if not out:
            raise ExperimentError(f"no levels given for {self.name}")
        return sorted(set(out))

    def _level(self, lv) -> float:
        if self.integer:
            if float(lv) != int(lv):
                raise ExperimentError(f"{self.name} levels are whole steps, got {lv}")
            lv = int(lv)
        else:
            lv = float(lv)
        if not math.isfinite(lv) or lv < self.minimum or (self.strict and lv == self.minimum):
            bound = f"> {self.minimum:g}" if self.strict else f">= {self.minimum:g}"
            raise ExperimentError(f"{self.name} levels must be {bound}, got {lv:g}")
        return lv

    def parse_levels(self, text: str) -> list[float]:
        """`--levels 1,2,4` as numbers (whole steps where the levels are steps)."""
        if self.fixed_levels:
            raise ExperimentError(f"{self.name} takes no --levels: {self.axis} come from the images")
        values = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                values.append(int(part) if self.integer else float(part))
            except ValueError:
                kind = "whole numbers of steps" if self.integer else "numbers"
                raise ExperimentError(f"--levels for {self.name} must be {kind} separated by commas, "
                                      f"got '{part}'") from None
        return self.check_levels(values)
