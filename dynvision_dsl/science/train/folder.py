"""The run folder: what --resume and --force may do with it, its lock, and reading a run back."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch.distributed as dist

from ...checkpoint import Checkpoint, CheckpointError
from ...checkpoint import load as load_checkpoint
from ...util.files import OutputError, RunFolder, user_entries
from ...util.provenance import set_text
from .dist import _Dist
from .options import Regime, TrainError


OUTPUTS = ("last.pt", "best.pt", "metrics.csv", "learning_curve.png", "run.json")
_FLAGS = {"data": "--data", "batch": "--batch", "lr": "--lr", "seed": "--seed", "test_fraction": "--test-fraction",
          "pattern": "--pattern", "reaction_ms": "--reaction-time", "activity_loss": "--activity-loss",
          "lr_scale": "--lr-scale", "tbptt": "--tbptt", "clip": "--clip", "schedule": "--schedule",
          "warmup": "--warmup", "optimizer": "--optimizer", "weight_decay": "--weight-decay",
          "precision": "--precision", "val_data": "--val-data", "augment": "--augment", "normalize": "--normalize"}
RESUME_KEYS = ("params", *_FLAGS)  # must match to resume (--device, --epochs, --workers, --max-steps may change)
_BEFORE_DATA = {"val_data": None, "augment": False, "normalize": "none"}  # what a run from before these flags used


def _read_run(out: Path) -> tuple[Checkpoint | None, dict]:
    """The run in `out`: its last checkpoint (None if none) and run.json (empty if none)."""
    try:
        last = load_checkpoint(out / "last.pt") if (out / "last.pt").exists() else None
    except CheckpointError as exc:
        raise TrainError(f"{exc.problem}; restore it, or pass --force to start afresh") from None
    try:
        info = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        info = {}
    return last, info


def _mismatch(ours: dict, theirs: dict) -> list[str]:
    """What --resume would change, flag by flag, in the user's words."""
    problems = []
    defaults = {**Regime().as_args(), **_BEFORE_DATA}  # a run from before a flag existed trained with its default
    for key in RESUME_KEYS:
        a, b = ours.get(key, defaults.get(key)), theirs.get(key, defaults.get(key))
        if key == "params":
            if dict(a or {}) != dict(b or {}):
                problems.append(f"{set_text(a or {})} (the run used {set_text(b or {})})")
        elif a != b:
            problems.append(f"{_FLAGS[key]} {_shown(key, a)} (the run used {_shown(key, b)})")
    return problems


def _shown(key: str, value) -> str:
    """A recorded flag value as typed: '8 ms', 'recurrence=0.2 feedback=0.5', 'none'."""
    if key == "reaction_ms":
        return f"{value:g} ms"
    if key == "lr_scale":
        return " ".join(f"{k}={v:g}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)


def _prepare_folder(out: Path, resume: bool, force: bool, args: dict, text: str) -> Checkpoint | None:
    """Decide what to do with the run folder (read only): the checkpoint to resume
    from, None to start afresh, or a TrainError saying why not."""
    if not out.exists() or (out.is_dir() and not user_entries(out)):
        if resume:
            raise TrainError(f"{out} holds no run to resume (no last.pt); drop --resume to start one")
        return None
    if not out.is_dir():
        raise TrainError(f"{out} is a file, not a run folder; choose another --out")
    if force:
        return None
    last, info = _read_run(out)
    done = last.epoch if last is not None else 0
    planned = (info.get("args") or {}).get("epochs") or (last.extra.get("args", {}).get("epochs") if last else None)
    if not resume:
        if last is None and not info:
            raise TrainError(f"{out} is not empty and holds no run of dynv train; choose another --out, or pass "
                             f"--force to write the run's files there")
        raise TrainError(f"{out} holds a run ({done} of {planned if planned is not None else '?'} epochs done); "
                         f"pass --resume to continue it or --force to start afresh")
    if last is None:
        raise TrainError(f"{out} holds no checkpoint to resume (no last.pt); pass --force to start afresh")
    if "optimizer" not in last.extra or "args" not in last.extra:
        raise TrainError(f"{out / 'last.pt'} is not a checkpoint of dynv train; pass --force to start afresh")
    problems = _mismatch(args, {**last.extra["args"], "params": last.params})
    if problems:
        raise TrainError(f"--resume would change the run in {out}: " + "; ".join(problems) +
                         ". Resume with the run's settings, or pass --force to start afresh")
    if last.spec is not None and last.spec != text:
        raise TrainError(f"the spec has changed since the run in {out} started ({last.spec_path}); restore it, "
                         f"or pass --force to start afresh")
    return last


@contextmanager
def _hold_folder(out: Path, ctx: _Dist, echo: Callable[[str], None]) -> Iterator[None]:
    """Rank 0 holds the run folder's lock (util.files.RunFolder) for the whole run, so that a second
    `dynv train` (or run, experiment) into it refuses, naming this pid; every rank learns whether it could."""
    folder, error = None, None
    if ctx.rank == 0:
        try:
            folder = RunFolder(out, "dynv train", OUTPUTS).acquire()
        except OutputError as exc:
            error = str(exc)
    if ctx.world > 1:
        payload = [error]
        dist.broadcast_object_list(payload, src=0)
        error = payload[0]
    if error is not None:
        if folder is not None:
            folder.release(failed=True)
        raise TrainError(error)
    failed = True
    try:
        for note in folder.notes if folder else []:
            echo(note)
        yield
        failed = False
    finally:
        if folder is not None:
            folder.release(failed=failed)


def _same_epoch(path: Path, epoch: int) -> bool:
    try:
        return load_checkpoint(path).epoch == epoch
    except (OSError, ValueError, RuntimeError):
        return False

