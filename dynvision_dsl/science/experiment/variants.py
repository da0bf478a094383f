"""Variants of a sweep: one compiled model per point of the sweeps' Cartesian product, each
with the checkpoint's weights (strictly where they fit; a checkpoint must prove to be the spec's)."""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ... import checkpoint as ckpt_mod
from ...checkpoint import CheckpointError
from ..data import recorded as recorded_normalization
from ...diagnostics import DynError
from ...model import DynModel
from ...pipeline import compile as compile_spec
from ...util.params import SetParams, recorded
from .protocol import ExperimentError

import torch


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
        model.require("dynv experiment")  # its protocols show one stimulus and score one readout
        out.append(Variant(label, p, model, f"seeded {seed}"))
    if checkpoint is not None:
        unswept = (lambda: out[0].model) if not sweeps else (lambda: compile_spec(spec, base, file=file))
        load_variant_weights(out, checkpoint, unswept, partial, source, log)
        for variant in out:  # the images are normalised as they were in training
            variant.model.input_transform = recorded_normalization(checkpoint.extra)
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
