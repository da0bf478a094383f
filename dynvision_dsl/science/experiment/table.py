"""The one protocol table: every protocol of `dynv experiment`, in the order they are listed."""
from __future__ import annotations

from . import confusion, contrast, duration, ffonly, idle, interval, noise, null, response, stability
from .protocol import Protocol
from .protocol import ExperimentError

PROTOCOLS: dict[str, Protocol] = {m.PROTOCOL.name: m.PROTOCOL for m in (
    duration, contrast, interval, noise, response, stability, null, idle, ffonly, confusion)}


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`, or an ExperimentError listing them."""
    if name not in PROTOCOLS:
        raise ExperimentError(f"unknown protocol '{name}' (one of {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]


def check_levels(name: str, levels=None) -> list[float]:
    """The protocol's levels (defaults when None), validated, sorted and without repeats."""
    return get_protocol(name).check_levels(levels)


def parse_levels(name: str, text: str) -> list[float]:
    """`--levels 1,2,4` as numbers (whole steps where the levels are steps)."""
    return get_protocol(name).parse_levels(text)
