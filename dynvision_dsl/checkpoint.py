"""Checkpoints of `dynv train`: written atomically, read back with the params
the model was compiled with, so experiments rebuild the same model.

`load` reads a file (a checkpoint or a bare state dict) and says in one line
what is wrong with one that is missing, empty, truncated, foreign or holds
pickled objects beyond tensors; `load_weights` puts its tensors into a model,
strictly unless asked to take only what fits. `dynv run`, `dynv experiment`
and `dynv train --resume` all read weights through these two."""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError  # noqa: F401 (re-exported: checkpoint.CheckpointError)
from .util.files import atomic_target

FORMAT = "dynvision-dsl/checkpoint/1"
_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 4  # tensor names listed in a mismatch message


@dataclass
class Checkpoint:
    """What a training checkpoint holds; `model` alone is a plain state dict."""

    model: dict[str, torch.Tensor]
    params: dict[str, str] = field(default_factory=dict)  # the --set overrides the model was compiled with
    spec: str | None = None  # the spec's text
    spec_path: str | None = None
    epoch: int = 0  # epochs completed
    extra: dict[str, Any] = field(default_factory=dict)  # optimizer, RNG states, metrics, arguments

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "params": dict(self.params), "spec": self.spec,
                "spec_path": self.spec_path, "epoch": self.epoch, **self.extra}


def save(path: str | Path, ckpt: Checkpoint, overwrite: bool = True) -> None:
    """torch.save via a temporary file and a rename: a crash never leaves half a checkpoint."""
    with atomic_target(path, overwrite) as tmp:
        torch.save(ckpt.to_dict(), tmp)


# -------------------------------------------------------------------- reading
def load(path: str | Path) -> Checkpoint:
    """A checkpoint of `dynv train`, or a bare state dict saved with torch.save;
    CheckpointError (one line: the file and what is wrong) for anything else."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a state dict or a checkpoint of "
                              f"dynv train", "save model.state_dict() with torch.save")
    if data.get("format") == FORMAT:
        return _from_dict(path, data)
    bad = next((k for k, v in data.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))), None)
    if bad is not None or not data:
        what = "is empty" if not data else f"has {bad!r}: {type(data[bad]).__name__}"
        raise CheckpointError(f"{path} is neither a checkpoint of dynv train nor a state dict (a dict of "
                              f"tensors): it {what}", "save model.state_dict() with torch.save")
    return Checkpoint(model=data)


def _read(path: Path) -> Any:
    """torch.load with weights only, every failure turned into a CheckpointError that says why."""
    if path.is_dir():
        inside = [p.name for p in (path / "best.pt", path / "last.pt") if p.is_file()]
        hint = f"; did you mean {path / inside[0]}?" if inside else "; give a checkpoint file"
        raise CheckpointError(f"{path} is a folder, not a checkpoint", hint[2:])
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}" if not path.exists() else f"{path} is not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint", "write it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a damaged file's odd pickle protocol: it fails below
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises a zoo of types for bad bytes (EOFError, KeyError, RuntimeError, ...)
        found = re.search(r"GLOBAL ([\w.]+)", str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if found is not None:
            raise CheckpointError(f"{path} holds pickled Python objects besides tensors ({found.group(1)}), which "
                                  f"are not loaded because unpickling them can run code",
                                  "if you trust the file, re-save its tensors alone: "
                                  "torch.save(torch.load(PATH, weights_only=False)['model'], 'weights.pt')") from None
        raise CheckpointError(*_unreadable(path, head, exc)) from None


def _unreadable(path: Path, head: bytes, exc: Exception) -> tuple[str, str]:
    """Why torch.load failed, judged by the file's first bytes."""
    why = re.search(r"WeightsUnpickler error: ([^\n]{1,160})", str(exc))
    reason = why.group(1) if why else _first_line(exc)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return f"{path} is truncated or damaged (a zip archive that cannot be read)", "write it again"
        if not any(n.endswith("data.pkl") for n in names):
            return f"{path} is a zip archive but not one torch.save wrote", "give a checkpoint or a state dict"
        return f"{path} is a damaged torch file ({reason})", "write it again"
    if _looks_like_text(head):
        return f"{path} is a text file, not a checkpoint", "give a file written by torch.save or dynv train"
    if head.startswith(b"\x80"):  # a pickle (torch.save's legacy format)
        return f"{path} is damaged: its pickled data cannot be read ({reason})", "write it again"
    return f"{path} is not a file torch.save wrote ({reason})", "give a checkpoint or a state dict"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else "") or type(exc).__name__


def _from_dict(path: Path, data: dict) -> Checkpoint:
    """A checkpoint of dynv train, its fields checked (a damaged one says which field)."""
    model, params, epoch = data.get("model"), data.get("params") or {}, data.get("epoch", 0)
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise CheckpointError(f"{path} is a damaged checkpoint: its 'model' is not a state dict", "write it again")
    if not isinstance(params, dict) or not isinstance(epoch, int):
        raise CheckpointError(f"{path} is a damaged checkpoint: its 'params' or 'epoch' has the wrong type",
                              "write it again")
    known = {"format", "model", "params", "spec", "spec_path", "epoch"}
    return Checkpoint(model=model, params={str(k): str(v) for k, v in params.items()}, spec=data.get("spec"),
                      spec_path=data.get("spec_path"), epoch=epoch,
                      extra={k: v for k, v in data.items() if k not in known})


# ------------------------------------------------------------------- fitting
@dataclass
class LoadReport:
    """How a state dict fitted a model: tensors loaded, left at their seeded values, unused."""

    loaded: int
    total: int
    seeded: list[str]
    unused: list[str]

    @property
    def strict(self) -> bool:
        return not self.seeded and not self.unused

    def describe(self) -> str:
        """The text of an experiment CSV's `weights` column."""
        if self.strict:
            return "checkpoint"
        return f"checkpoint partial: {self.loaded}/{self.total} loaded, {len(self.seeded)} seeded, " \
               f"{len(self.unused)} unused"


def fit(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """How `state` fits `model` (nothing is loaded)."""
    own = model.state_dict()
    ok = [k for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)]
    return LoadReport(len(ok), len(own), sorted(set(own) - set(ok)), sorted(set(state) - set(ok)))


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], partial: bool = False,
                 source: str = "the checkpoint") -> LoadReport:
    """Load `state` strictly when every name and shape fits. Otherwise raise a CheckpointError
    saying what differs, or with `partial` load every tensor whose name and shape match
    (the rest keep their initial values); nothing fitting is an error either way."""
    report = fit(model, state)
    if report.strict:
        model.load_state_dict(state, strict=True)
        return report
    name = type(model).__name__
    if report.loaded == 0 and report.total:
        raise CheckpointError(f"none of the {len(state)} tensors of {source} fits {name} ({_names(state)} in the "
                              f"file; {_names(model.state_dict())} in the model)", "is it for this spec?")
    if not partial:
        raise CheckpointError(f"{source} does not fit {name}: {mismatch(model, state)}",
                              f"is it for this spec and these --set values? pass --partial-weights to load the "
                              f"{report.loaded} tensors that fit and keep seeded values for the rest")
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state.items() if k in own and v.shape == own[k].shape}, strict=False)
    return report


def mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """What differs between a state dict and a model: missing, reshaped and unused tensors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    reshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    unused = [k for k in state if k not in own]
    parts = []
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} tensor{'s' * (len(reshaped) != 1)} differ in shape ({k}: "
                     f"{list(state[k].shape)} in the file, {list(own[k].shape)} in the model)")
    if missing:
        parts.append(f"{len(missing)} of the model's are missing ({_names(missing)})")
    if unused:
        parts.append(f"{len(unused)} of the file's are unused ({_names(unused)})")
    return ", ".join(parts)


def _names(keys) -> str:
    keys = list(keys)
    return ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
