"""A sweep's plan: the grid of params, one filesystem-safe and unique name per variant, and the
config a Snakemake workflow reads (no torch: planning a sweep of 50 variants is instant).

    grid = [parse_grid("tau=5 ms,10 ms"), parse_grid("recurrence=full,self")]
    plan = make_plan("specs/dyrcnn_x4.dyn", grid, ["interval"], train_args=["--epochs", "2"])
    plan.variants[0].name    # 'tau-5-ms__recurrence-full'
"""
from __future__ import annotations

import hashlib
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

MAX_NAME = 80  # characters of a variant's folder name before it is cut and given a hash
_UNSAFE = re.compile(r"[^A-Za-z0-9.+]+")  # anything else (space, /, \, :, *, unicode) becomes '-'


class SweepError(ValueError):
    """A sweep the user can fix (a malformed --grid, a name twice, an existing workflow)."""


@dataclass(frozen=True)
class Variant:
    """One point of the grid: its folder name (safe, unique), its label and its params."""

    name: str
    label: str  # `tau=5 ms recurrence=full`, as the user typed the values
    params: dict[str, str]


@dataclass
class Plan:
    """Everything the workflow needs, as plain data (it becomes config.yaml)."""

    spec: Path
    grid: list[tuple[str, list[str]]]
    variants: list[Variant]
    experiments: list[str]
    sets: dict[str, str] = field(default_factory=dict)  # --set values shared by every variant
    train_args: list[str] = field(default_factory=list)  # dynv train flags, verbatim
    experiment_args: dict[str, list[str]] = field(default_factory=dict)  # per protocol
    dynv: list[str] = field(default_factory=lambda: [sys.executable, "-m", "dynvision_dsl.cli"])
    cwd: Path = field(default_factory=Path.cwd)


def parse_grid(text: str) -> tuple[str, list[str]]:
    """`NAME=V1,V2,...` as (NAME, [V1, V2, ...]); values keep inner spaces (`1 ms`)."""
    name, eq, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not name.strip() or not items:
        raise SweepError(f"--grid needs NAME=V1,V2,..., got '{text}'")
    if len(set(items)) != len(items):
        twice = sorted({v for v in items if items.count(v) > 1})
        raise SweepError(f"--grid {name.strip()} lists {', '.join(twice)} twice; give each value once")
    return name.strip(), items


def slug(text: str) -> str:
    """`text` with every run of unsafe characters as one '-' (never empty, never leading '-' or '.')."""
    out = _UNSAFE.sub("-", text).strip("-.")
    return out or "x"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def variant_names(points: list[list[tuple[str, str]]]) -> list[str]:
    """A folder name per grid point: `name-value` pairs joined by `__`, slugged; names that would
    collide (also ignoring case, for macOS and Windows file systems) or run long get a hash of the label."""
    labels = [" ".join(f"{n}={v}" for n, v in point) for point in points]
    names = ["__".join(f"{slug(n)}-{slug(v)}" for n, v in point) or "default" for point in points]
    folded: dict[str, int] = {}
    for name in names:
        folded[name.casefold()] = folded.get(name.casefold(), 0) + 1
    out = []
    for name, label in zip(names, labels):
        if folded[name.casefold()] > 1 or len(name) > MAX_NAME:
            name = f"{name[:MAX_NAME - 9]}-{_short_hash(label)}"
        out.append(name)
    return out


def expand(grid: list[tuple[str, list[str]]]) -> list[Variant]:
    """The grid's Cartesian product, in the order given (the last --grid varies fastest)."""
    names = [n for n, _ in grid]
    if len(set(names)) != len(names):
        raise SweepError(f"--grid names a param twice: {', '.join(names)}; give each param one --grid")
    points = [list(zip(names, combo)) for combo in itertools.product(*(values for _, values in grid))]
    return [Variant(name, " ".join(f"{n}={v}" for n, v in point) or "default", dict(point))
            for name, point in zip(variant_names(points), points)]


def make_plan(spec: str | Path, grid: list[tuple[str, list[str]]], experiments: Iterable[str],
              sets: Mapping[str, str] | None = None, train_args: Iterable[str] = (),
              experiment_args: Mapping[str, list[str]] | None = None, dynv: list[str] | None = None) -> Plan:
    """A plan with every variant named; a grid param also given by --set is refused (which would win?)."""
    sets = dict(sets or {})
    both = [n for n, _ in grid if n in sets]
    if both:
        raise SweepError(f"{', '.join(both)} is given by both --grid and --set; drop one")
    experiments = list(dict.fromkeys(experiments))
    plan = Plan(Path(spec).resolve(), grid, expand(grid), experiments, sets, list(train_args),
                {p: list((experiment_args or {}).get(p, [])) for p in experiments})
    if dynv is not None:
        plan.dynv = list(dynv)
    return plan


def config(plan: Plan) -> dict:
    """config.yaml's content: plain strings, lists and mappings (every user value a quoted string)."""
    return {
        "spec": str(plan.spec),
        "cwd": str(plan.cwd),  # the commands run here: relative paths in the flags mean what they meant
        "dynv": list(plan.dynv),
        "sets": dict(plan.sets),
        "grid": {name: list(values) for name, values in plan.grid},
        "variants": {v.name: {"label": v.label, "params": dict(v.params)} for v in plan.variants},
        "experiments": list(plan.experiments),
        "train_args": list(plan.train_args),
        "experiment_args": {p: list(a) for p, a in plan.experiment_args.items()},
        "threads": {"train": 2, "experiment": 1, "summary": 1},
        # per rule, handed to Snakemake as `resources:`; an executor reads the ones it knows
        # (the SLURM plugin: mem_mb, runtime in minutes, slurm_partition, slurm_account, gres, ...)
        "resources": {"train": {"mem_mb": 4000, "runtime": 60},
                      "experiment": {"mem_mb": 2000, "runtime": 30},
                      "summary": {"mem_mb": 1000, "runtime": 10}},
    }
