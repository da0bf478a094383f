"""Errors a user can fix that modules needing torch raise (a NaN in a run, a bad checkpoint or
image), defined here without torch so that the CLI catches them without importing it."""
from __future__ import annotations


class NonFiniteError(RuntimeError):
    """A NaN or inf in a run, located where it first appeared: `area` (None for
    the logits), `step` (counted from the first frame), `item` of the batch, and
    `kind` ('nan', 'inf' or '-inf')."""

    def __init__(self, message: str, area: str | None = None, step: int | None = None,
                 item: int | None = None, kind: str = "nan", ms: float | None = None):
        super().__init__(message)
        self.area, self.step, self.item, self.kind, self.ms = area, step, item, kind, ms

    @property
    def where(self) -> str:
        """'area V2 at step 7 (14 ms)' or 'the logits at step 7 (14 ms)'."""
        place = f"area {self.area}" if self.area is not None else "the logits"
        when = f" at step {self.step}" if self.step is not None else ""
        if self.step is not None and self.ms is not None:
            when += f" ({self.ms:g} ms)"
        return place + when


class CheckpointError(ValueError):
    """A weights file that cannot be read or does not fit the model: `problem` names the file and
    what is wrong with it, `fix` what to do (a caller may put its own)."""

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix = problem, fix


class ImageError(ValueError):
    """An image file that cannot be shown to a model; the message names the file and what is wrong."""


class UnsupportedSpecError(ValueError):
    """A spec that a command cannot handle as it is (several inputs or readouts where the command
    takes one); the message names the command, what the spec has and what to use instead."""


class DataError(ValueError):
    """Data the user can fix (a missing or empty folder, one class, an unreadable image in a
    set, a bad data flag); the message is one line naming the folder, file or flag."""


class DeviceError(ValueError):
    """A `--device` (or `device=`) that does not name a device, or names one this machine
    lacks (cuda without CUDA, cuda:3 with two GPUs); the message names the value and the fix."""
