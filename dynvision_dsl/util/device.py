"""The one parser of `--device` (run, experiment, train) and `device=`: auto, cpu, cuda, cuda:N.

Syntax is checked without torch (`check_device_name`, for validating options early);
`resolve_device` asks torch whether the device exists and gives a torch.device."""
from __future__ import annotations

import re

from ..errors import DeviceError

CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_NAME = re.compile(r"auto|cpu|cuda(?::(\d+))?")


def check_device_name(text: str | None, flag: str = "--device") -> None:
    """Raise DeviceError unless `text` is None (auto) or one of auto, cpu, cuda, cuda:N."""
    if text is None or _NAME.fullmatch(str(text)):
        return
    from ..diagnostics import did_you_mean

    guess = did_you_mean(str(text), ("auto", "cpu", "cuda"))
    hint = f" (did you mean '{guess}'?)" if guess else ""
    raise DeviceError(f"{flag}: unknown device {str(text)!r}{hint}; choose one of {', '.join(CHOICES)}")


def resolve_device(text: str | None, flag: str = "--device"):
    """The torch.device for `text` (None and 'auto': cuda when available, else cpu); a CUDA
    device this machine lacks is a DeviceError saying what to pass instead."""
    import torch

    check_device_name(text, flag)
    if text in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{flag} {text}: CUDA is not available (no CUDA build of torch, or no GPU "
                              f"visible); pass {flag} cpu (or {flag} auto)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"{flag} {text}: this machine has {count} CUDA device{'s' * (count != 1)} "
                              f"(cuda:0 to cuda:{count - 1}); pass one of those")
    return device
