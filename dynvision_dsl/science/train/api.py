"""`train()`, the entry of `dynv train` and of the Python API: check the arguments, compile the
spec, load the data, prepare the run folder, then run the epochs (loop.py).

    result = train("specs/dyrcnn_x4.dyn", {"size": "32", "steps": "10"}, data="digits", epochs=10,
                   regime=Regime(pattern="1011", reaction_ms=8, tbptt=5))
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from ...checkpoint import Checkpoint
from ...checkpoint import save as save_checkpoint
from ..data import DataError, DataOptions, Prepared, prepare
from ...model import DynModel
from ...pipeline import compile as compile_spec
from ...util.params import SetParams
from ...util.provenance import metadata
from ...util.source import read_spec_text
from .dist import _Dist, _distributed
from .groups import param_groups
from .folder import OUTPUTS, _hold_folder, _prepare_folder, _read_run, _same_epoch
from .loop import _Run
from .options import Regime, TrainError, regime_text
from .presentation import label_steps, stretch
from .report import EpochMetrics, _pct


@dataclass
class TrainResult:
    """A finished (or already complete) run: its folder, the trained model (in eval
    mode, on the training device), every epoch's metrics and the best epoch."""

    out: Path
    model: DynModel
    metrics: list[EpochMetrics]
    best_epoch: int | None
    rank: int = 0

    @property
    def epochs(self) -> int:
        return len(self.metrics)

    @property
    def best_acc(self) -> float | None:
        return None if self.best_epoch is None else self.metrics[self.best_epoch - 1].test_acc


@dataclass
class _Job:
    """One call of train(), its arguments checked."""

    spec: Path
    text: str
    params: SetParams
    data: str
    epochs: int
    batch: int
    lr: float
    test_fraction: float
    seed: int
    out: Path
    resume: bool
    force: bool
    progress: bool
    echo: Callable[[str], None]
    command_line: str | None
    regime: Regime = field(default_factory=Regime)
    options: DataOptions = field(default_factory=DataOptions)  # --data and the other data flags
    max_steps: int | None = None

    def args(self) -> dict[str, Any]:
        """Every setting, as run.json and the checkpoint record it (--resume compares them)."""
        o = self.options
        return {"params": dict(self.params), "data": self.data, "epochs": self.epochs, "batch": self.batch,
                "lr": self.lr, "seed": self.seed, "test_fraction": self.test_fraction, **self.regime.as_args(),
                "val_data": o.val_data, "augment": o.augment, "normalize": o.normalize, "workers": o.workers,
                "max_steps": self.max_steps}


def train(spec: str | Path, params: dict[str, Any] | None = None, *, data: str = "digits", epochs: int = 10,
          batch: int = 32, lr: float = 1e-3, test_fraction: float = 0.2, seed: int = 0,
          out: str | Path | None = None, resume: bool = False, force: bool = False, progress: bool = True,
          echo: Callable[[str], None] = print, command_line: str | None = None,
          regime: Regime | None = None, val_data: str | None = None, workers: int = 0, augment: bool = False,
          normalize: str = "none", max_steps: int | None = None) -> TrainResult:
    """Train `spec` compiled with `params` (the `--set` overrides) and write the run to
    `out` (default runs/train-SPECSTEM). `epochs` is the total, also when resuming; `regime`
    holds the other flags (pattern, reaction time, activity loss, ..., see options.Regime).
    Under torchrun (WORLD_SIZE > 1) every process calls this; rank 0 writes and prints.
    Raises DynError for a spec that cannot be read or has errors, TrainError for other problems
    the user can fix, and NonFiniteError for NaN/inf. `command_line` is recorded in run.json
    (default: this process's arguments). Data: `val_data` a held-out folder (else `test_fraction`
    of `data`), `workers` decoding processes, `augment`, `normalize` (science.data.DataOptions);
    `max_steps` ends training (and the LR schedule) after that many optimiser steps (a smoke run)."""
    spec = Path(spec)
    text = read_spec_text(spec)  # a missing or binary spec is a DynError before anything else happens
    params = SetParams({str(k): str(v) for k, v in (params or {}).items()}, getattr(params, "origins", {}))
    out = Path(out) if out is not None else Path("runs") / f"train-{spec.stem}"
    if resume and force:
        raise TrainError("pass either --resume (continue the run) or --force (start afresh), not both")
    for ok, message in ((epochs >= 1, f"--epochs must be at least 1, got {epochs}"),
                        (batch >= 1, f"--batch must be at least 1, got {batch}"),
                        (lr > 0 and math.isfinite(lr), f"--lr must be a positive number, got {lr}"),
                        (0 < test_fraction < 1, f"--test-fraction must be between 0 and 1, got {test_fraction}"),
                        (max_steps is None or max_steps >= 1, f"--max-steps must be at least 1, got {max_steps}")):
        if not ok:
            raise TrainError(message)
    options = DataOptions(data, val_data, workers, augment, normalize)
    try:
        options.check()
    except DataError as exc:
        raise TrainError(str(exc)) from None
    job = _Job(spec, text, params, data, epochs, batch, lr, test_fraction, seed, out, resume, force, progress,
               echo, command_line, regime if regime is not None else Regime(), options, max_steps)
    ctx = _distributed(job.regime.device)
    rng_devices = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
    try:
        # the caller's global RNG is restored afterwards; inside, it draws the initial
        # weights (seeded) and any dropout masks (its state is checkpointed)
        with torch.random.fork_rng(devices=rng_devices), _hold_folder(out, ctx, echo):
            return _train(job, ctx)
    finally:
        if ctx.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _compile(job: _Job) -> DynModel:
    """The spec compiled with the job's params (weights drawn from the seed), if it can be trained."""
    torch.manual_seed(job.seed)
    model = compile_spec(job.text, job.params, file=str(job.spec))
    model.require("dynv train")  # one image per sample, one loss on one readout
    name = model.program.model.name
    if model.first_scored_step is None:
        raise TrainError(f"{name}'s readout is silent for all {model.steps} steps, so there is nothing to train; "
                         f"raise steps (--set steps=N) or shorten the delays before the readout")
    if not any(p.requires_grad for p in model.parameters()):
        raise TrainError(f"{name} has no trainable parameters; give it a connection with weights (conv, linear, ...)")
    r = job.regime
    if not bool(label_steps(stretch(r.pattern, model.steps), model.dt, r.reaction_ms, model.first_scored_step).any()):
        raise TrainError(f"no step carries a label: with --pattern {r.pattern} over {model.steps} steps of "
                         f"{model.dt:g} ms, --reaction-time {r.reaction_ms:g} ms and the readout present from step "
                         f"{model.first_scored_step}; shorten --reaction-time or raise steps (--set steps=N)")
    return model


def _datasets(job: _Job, model: DynModel, ctx: _Dist) -> Prepared:
    """The data: its training and held-out sets and normalisation (science.data.prepare),
    if they fit the model and --batch."""
    name, batch = model.program.model.name, job.batch
    try:
        dataset = prepare(job.options, tuple(model.input_shape), job.test_fraction, job.seed)
    except (DataError, OSError) as exc:
        raise TrainError(str(exc)) from None
    if len(dataset.classes) != model.classes:
        hint = (f"pass --set classes={len(dataset.classes)}" if "classes" in model.program.model.params else
                f"make the readout's last linear(...) {len(dataset.classes)} wide")
        raise TrainError(f"the data ({dataset.name}) has {len(dataset.classes)} classes but {name} reads out "
                         f"{model.classes}: {hint}")
    if batch % ctx.world:
        raise TrainError(f"--batch {batch} does not split evenly over {ctx.world} processes; "
                         f"pass a multiple of {ctx.world}")
    if len(dataset.train) < batch:
        raise TrainError(f"--batch {batch} is more than the {len(dataset.train)} training images; "
                         f"pass a smaller --batch")
    return dataset


def _run_info(job: _Job, run: _Run, dataset: Prepared, last: Checkpoint | None) -> dict:
    """run.json's content (rank 0): provenance, every setting, the data, the model and the device."""
    model, ctx, args = run.model, run.ctx, run.args
    old = _read_run(job.out)[1] if last is not None else {}
    return {
        **metadata("dynv train", job.spec, job.params, stimulus=f"--data {job.data}", seed=job.seed,
                   command_line=job.command_line),
        "model": model.program.model.name, "args": args,
        "data": {"name": dataset.name, "classes": dataset.classes, "train": len(run.train_set),
                 "test": len(run.test_set), "batches_per_epoch": run.n_batches,
                 "left_out_per_epoch": len(run.train_set) - run.n_batches * job.batch,
                 "normalize": run.normalization()},
        "model_info": {"input_shape": list(model.input_shape), "steps": model.steps, "idle": model.idle,
                       "dt_ms": model.dt, "readout_from": model.readout_from, "classes": model.classes,
                       "parameters": sum(p.numel() for p in model.parameters()),
                       "labelled_steps": [t for t, on in enumerate(run.labelled.tolist()) if on]},
        "param_groups": {g["kind"]: {"lr": g["lr"], "parameters": len(g["params"])}
                         for g in param_groups(model, model.graph, job.lr, dict(job.regime.lr_scale))},
        "device": str(ctx.device), "world_size": ctx.world,
        "started": old.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
        "resumed_at_epochs": old.get("resumed_at_epochs", []) + ([last.epoch] if last is not None else []),
    }


def _open_folder(job: _Job, run: _Run, last: Checkpoint | None) -> None:
    """Rank 0 creates the run folder (staged under --force) and writes run.json, or, resuming,
    brings best.pt and the reports up to last.pt."""
    out = job.out
    if job.force and any((out / file).exists() for file in OUTPUTS):
        run.stage()  # the old run stays until the new one has its first checkpoint
    out.mkdir(parents=True, exist_ok=True)
    if last is not None:
        if run.best_epoch == last.epoch and not _same_epoch(out / "best.pt", last.epoch):
            save_checkpoint(out / "best.pt", last)  # the run stopped between last.pt and best.pt
        run.write_reports()  # the reports follow last.pt
    else:
        run.write_info()


def _train(job: _Job, ctx: _Dist) -> TrainResult:
    model = _compile(job)
    dataset = _datasets(job, model, ctx)
    train_set, test_set = dataset.train, dataset.test
    model.input_transform = dataset.normalization
    args = job.args()
    last = _prepare_folder(job.out, job.resume, job.force, args, job.text)
    model.to(ctx.device)
    run = _Run(job.spec, job.text, job.params, args, job.out, ctx, model, train_set, test_set, job.progress,
               job.echo, job.regime)
    if last is not None:
        run.restore(last)
    if last is not None and last.epoch >= job.epochs:
        if ctx.rank == 0:
            job.echo(f"{job.out}: {last.epoch} of {job.epochs} epochs already done; pass a larger --epochs to "
                     f"train on")
        model.eval()
        return TrainResult(job.out, model, list(run.rows), run.best_epoch, ctx.rank)
    if ctx.rank == 0:
        run.info = _run_info(job, run, dataset, last)
        _open_folder(job, run, last)
    ctx.barrier()
    _announce(job, run, dataset, resumed=last is not None)
    run.wrap()
    try:
        for epoch in range(len(run.rows) + 1, job.epochs + 1):
            if run.capped():
                break
            run.epoch(epoch)
    finally:
        run.unstage()  # a no-op once the first checkpoint replaced the old run
    if ctx.rank == 0 and run.capped():
        job.echo(f"stopped after --max-steps {job.max_steps} optimiser steps (epoch {len(run.rows)} of {job.epochs})")
    model.eval()
    if ctx.rank == 0 and run.best_epoch is not None:
        best = run.rows[run.best_epoch - 1]
        job.echo(f"wrote {', '.join(OUTPUTS)} to {job.out}; best held-out accuracy {_pct(best.test_acc)} "
                 f"at epoch {best.epoch}")
    return TrainResult(job.out, model, list(run.rows), run.best_epoch, ctx.rank)


def _announce(job: _Job, run: _Run, dataset: Prepared, resumed: bool) -> None:
    """Rank 0 says what it trains, on what, where."""
    if run.ctx.rank != 0:
        return
    n_params = sum(p.numel() for p in run.model.parameters())
    what = f"resuming {job.out} at epoch {len(run.rows) + 1}" if resumed else f"training into {job.out}"
    flags = regime_text(job.regime)
    job.echo(f"{what}: {run.model.program.model.name} ({n_params:,} parameters) on {dataset.name}, "
             f"{len(run.train_set)} training / {len(run.test_set)} held-out images, {run.n_batches} batches of "
             f"{job.batch} per epoch, {run.ctx.world} x {run.ctx.device.type}" + (f"; {flags}" if flags else ""))
    kinds = {g["kind"] for g in param_groups(run.model, run.model.graph, job.lr, {})}
    for kind in sorted(set(job.regime.lr_scale) - kinds):
        job.echo(f"note: --lr-scale {kind}= has no effect: {run.model.program.model.name} has no trainable "
                 f"{kind} parameters")
