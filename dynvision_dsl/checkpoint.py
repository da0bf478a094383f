"""Checkpoints of `dynv train`: written atomically, read back with the params
the model was compiled with, so experiments rebuild the same model."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .util.files import atomic_target

FORMAT = "dynvision-dsl/checkpoint/1"


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


def load(path: str | Path) -> Checkpoint:
    """A checkpoint of `dynv train`, or a bare state dict saved with torch.save."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a checkpoint or a state dict")
    if data.get("format") != FORMAT:
        if all(isinstance(v, torch.Tensor) for v in data.values()):
            return Checkpoint(model=data)
        raise ValueError(f"{path} is neither a dynvision-dsl checkpoint nor a state dict")
    known = {"format", "model", "params", "spec", "spec_path", "epoch"}
    return Checkpoint(model=data["model"], params=dict(data.get("params") or {}), spec=data.get("spec"),
                      spec_path=data.get("spec_path"), epoch=int(data.get("epoch", 0)),
                      extra={k: v for k, v in data.items() if k not in known})
