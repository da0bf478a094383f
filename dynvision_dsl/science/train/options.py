"""DynVision's training regimes as one validated value: a `Regime` holds every `dynv train`
flag beyond data, epochs, batch and lr, so the loop, the checkpoint and run.json read one thing."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ...diagnostics import did_you_mean
from ...runtime import PRECISIONS
from ...util.device import check_device_name

KINDS = ("recurrence", "feedback", "feedforward", "readout", "area")  # parameter groups (see groups.py)
SCHEDULES = ("none", "cosine", "step")
OPTIMIZERS = ("adam", "adamw", "sgd")
_DURATION = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*")


class TrainError(Exception):
    """A problem the user can fix (bad arguments, data, an existing run); the CLI
    prints it as `dynv: ...` (on rank 0 only: every rank raises the same)."""


@dataclass(frozen=True)
class Regime:
    """How to train, beyond data, epochs, batch and lr (names as DynVision's; see docs/TRAINING.md).

    pattern: presentation pattern ('1011': shown, blank, shown, shown), stretched over the steps;
    reaction_ms: steps less than this long after an onset carry no label; activity_loss: weight of
    the mean absolute area output; lr_scale: learning-rate factor per connection kind; tbptt: cut the
    graph every K steps (0: never); recompute: checkpoint every K steps, or 'auto' for balanced segments, recomputed in backward (0: off;
    the same gradients for less memory); clip: gradient-norm limit; schedule/warmup: learning-rate
    schedule over optimiser steps; weight_decay None: the optimiser's default; device: auto (or None:
    CUDA when available), cpu, cuda or cuda:N."""

    pattern: str = "1"
    reaction_ms: float = 0.0
    activity_loss: float = 0.0
    lr_scale: Mapping[str, float] = field(default_factory=dict)
    tbptt: int = 0
    recompute: int | str = 0
    clip: float | None = None
    schedule: str = "none"
    warmup: int = 0
    optimizer: str = "adam"
    weight_decay: float | None = None
    precision: str = "32"
    device: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.reaction_ms, str):  # '8ms', as on the command line
            object.__setattr__(self, "reaction_ms", parse_duration(self.reaction_ms))
        if isinstance(self.precision, int) and not isinstance(self.precision, bool):
            object.__setattr__(self, "precision", str(self.precision))
        for ok, message in _problems(self):
            if not ok:
                raise TrainError(message)
        check_device_name(self.device)  # auto, cpu, cuda, cuda:N (util.device, as run and experiment)

    @property
    def decay(self) -> float:
        """The weight decay in use: the flag, else the optimiser's own default."""
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.01 if self.optimizer == "adamw" else 0.0

    def as_args(self) -> dict[str, Any]:
        """The flags as recorded in run.json and the checkpoint (plain JSON values)."""
        out = asdict(self)
        out["lr_scale"] = dict(sorted(self.lr_scale.items()))
        out["weight_decay"] = self.decay
        return out


def regime_text(r: Regime) -> str:
    """The flags that differ from their defaults, as typed: '--pattern 1011 --tbptt 3' ('' for none)."""
    default, parts = Regime(), []
    for name, value in asdict(r).items():
        if value == getattr(default, name):
            continue
        flag = "--" + ("reaction-time" if name == "reaction_ms" else name.replace("_", "-"))
        if name == "lr_scale":
            parts += [f"--lr-scale {k}={v:g}" for k, v in sorted(value.items())]
        else:
            parts.append(f"{flag} {value:g}ms" if name == "reaction_ms" else f"{flag} {value}")
    return " ".join(parts)


def _problems(r: Regime) -> list[tuple[bool, str]]:
    """(ok, message) for every flag; the first failing one is raised."""
    number = (int, float)
    return [
        (isinstance(r.pattern, str) and bool(r.pattern) and set(r.pattern) <= {"0", "1"} and "1" in r.pattern,
         f"--pattern takes 0s and 1s with at least one 1 (1 shows the image, 0 a blank frame), got {r.pattern!r}"),
        (isinstance(r.reaction_ms, number) and math.isfinite(r.reaction_ms) and r.reaction_ms >= 0,
         f"--reaction-time must be a duration of 0 ms or more such as 8ms, got {r.reaction_ms!r}"),
        (isinstance(r.activity_loss, number) and math.isfinite(r.activity_loss) and r.activity_loss >= 0,
         f"--activity-loss must be a weight of 0 or more, got {r.activity_loss!r}"),
        *_scale_problems(r.lr_scale),
        (isinstance(r.tbptt, int) and not isinstance(r.tbptt, bool) and r.tbptt >= 0,
         f"--tbptt must be a whole number of steps, at least 1 (or 0 for full backpropagation), got {r.tbptt!r}"),
        (r.recompute == "auto" or (isinstance(r.recompute, int) and not isinstance(r.recompute, bool)
                                    and r.recompute >= 0),
         f"--recompute must be a whole number of steps per checkpointed segment, at least 1, or auto "
         f"(balanced segments; 0: off), got {r.recompute!r}"),
        (r.clip is None or (isinstance(r.clip, number) and math.isfinite(r.clip) and r.clip > 0),
         f"--clip must be a positive gradient norm, got {r.clip!r}"),
        (r.schedule in SCHEDULES, _choice("--schedule", r.schedule, SCHEDULES)),
        (isinstance(r.warmup, int) and not isinstance(r.warmup, bool) and r.warmup >= 0,
         f"--warmup must be a whole number of optimiser steps, 0 or more, got {r.warmup!r}"),
        (r.optimizer in OPTIMIZERS, _choice("--optimizer", r.optimizer, OPTIMIZERS)),
        (r.weight_decay is None or (isinstance(r.weight_decay, number) and math.isfinite(r.weight_decay)
                                    and r.weight_decay >= 0),
         f"--weight-decay must be 0 or more, got {r.weight_decay!r}"),
        (r.precision in PRECISIONS, _choice("--precision", r.precision, PRECISIONS)),
    ]


def _scale_problems(scales: Mapping[str, float]) -> list[tuple[bool, str]]:
    out = []
    for kind, value in scales.items():
        out.append((kind in KINDS, _choice("--lr-scale", kind, KINDS, what="connection kind")))
        out.append((isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
                    f"--lr-scale {kind}= takes a factor of 0 or more, got {value!r}"))
    return out


def _choice(flag: str, value: Any, allowed: tuple[str, ...], what: str = "value") -> str:
    guess = did_you_mean(str(value), allowed)
    hint = f" (did you mean '{guess}'?)" if guess else ""
    return f"{flag}: unknown {what} {str(value)!r}{hint}; choose one of {', '.join(allowed)}"


def parse_duration(text: str | float, flag: str = "--reaction-time") -> float:
    """'8ms', '8 ms', '0.008s' or a plain number of ms, in ms."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.fullmatch(str(text))
    if match is None:
        raise TrainError(f"{flag} takes a duration such as 8ms or 0.008s, got {text!r}")
    value = float(match.group(1))
    return value * 1000 if match.group(2) == "s" else value


def parse_recompute(text: str | int) -> int | str:
    """`--recompute K|auto`: a whole number stays a number; anything else is left for the checks."""
    text = text.strip() if isinstance(text, str) else text
    return int(text) if isinstance(text, str) and text.lstrip("-").isdigit() else text


def parse_lr_scale(pairs: list[str] | None) -> dict[str, float]:
    """`--lr-scale KIND=FACTOR` pairs (repeatable) to {kind: factor}."""
    out: dict[str, float] = {}
    for pair in pairs or []:
        kind, eq, value = pair.partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = None
        if not eq or factor is None:
            raise TrainError(f"--lr-scale takes KIND=FACTOR such as recurrence=0.2, got {pair!r}")
        if kind.strip() in out:
            raise TrainError(f"--lr-scale {kind.strip()}= is given twice; give each kind once")
        out[kind.strip()] = factor
    return out
