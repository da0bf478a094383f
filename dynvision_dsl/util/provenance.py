"""Where an output came from, recorded the same way by `dynv run`, `experiment` and `train`:
the spec (path and sha256), the `--set` values, the stimulus, the weights, the seed, the
versions, the command line and the time (`metadata`), and one line of it for plot titles (`describe`)."""
from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path
from typing import Any

from .files import command_line as typed_command

BUILTIN_STIMULUS = "built-in grating"


def spec_sha256(path: str | Path) -> str | None:
    """The sha256 of the spec file's bytes (None when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def versions() -> dict[str, str]:
    """The versions a result depends on."""
    import torch

    from .. import __version__

    return {"dynvision_dsl": __version__, "torch": str(torch.__version__), "python": platform.python_version(),
            "platform": platform.platform()}


def set_text(params: dict[str, Any]) -> str:
    """The `--set` values as typed (`--set a=1 --set b=2`), or `no --set`."""
    return " ".join(f"--set {k}={v}" for k, v in sorted(params.items())) or "no --set"


def metadata(command: str, spec: str | Path, params: dict[str, Any], *, stimulus: str | None = None,
             weights: str | None = None, seed: int | None = None, command_line: str | None = None) -> dict[str, Any]:
    """The provenance of one output (a JSON-ready dict): spec path and sha256, params, stimulus,
    weights (a checkpoint path, or None for seeded initial weights), seed, versions, command line
    (as main() got it, else sys.argv), time."""
    return {"command": command, "command_line": command_line or typed_command(), "spec": str(spec), "spec_sha256": spec_sha256(spec),
            "params": {str(k): str(v) for k, v in params.items()}, "stimulus": stimulus, "weights": weights,
            "seed": seed, "versions": versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def describe(params: dict[str, Any], stimulus: str | None = None, weights: str | None = None,
             seed: int | None = None) -> str:
    """One line for a plot title: the --set values, the stimulus and the weights."""
    parts = [set_text(params)]
    if stimulus:
        parts.append(f"stimulus {stimulus}")
    if weights:
        parts.append(f"weights {weights}")
    elif seed is not None:
        parts.append(f"seeded weights (--seed {seed})")
    return " | ".join(parts)
