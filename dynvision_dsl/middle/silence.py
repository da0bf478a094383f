"""The one set of presence rules (silence, LANGUAGE.md section 6). The schedule applies them to
equations, step by step, to decide which areas are present when; the backend's drop_silent
pass applies the same functions to a step graph's nodes. Torch-free: `dynv check` reads them.

A value is present or silent. Silence starts at what has not arrived yet: a delayed read
before its source's first output, a state without an initial value, a port nothing drives.
"""
from __future__ import annotations

from typing import Iterable

SUMS = frozenset({"add", "sub"})  # operators whose silent terms leave the sum (`operator.add`, `operator.sub`)


def is_sum(op: str) -> bool:
    """Whether `op` (an operator name: "add", "mul", "relu", ...) is a sum, whose silent terms drop out."""
    return op in SUMS


def present(op: str, operands: Iterable[bool]) -> bool:
    """Whether `op` of operands so present is present: a sum needs any term, anything else
    needs every operand (noise(), with none, is present; so are constants, params and t)."""
    operands = list(operands)
    return any(operands) if is_sum(op) else all(operands)


def port_present(terms: Iterable[bool]) -> bool:
    """A port is the sum of the connections into it: present once any of them is."""
    return present("add", terms)


def assigned(value_present: bool) -> str:
    """What `x = value` on a state leaves in x: "value" while the value is present, else "old"
    (the state keeps its previous value while the value is silent)."""
    return "value" if value_present else "old"


def assigned_present(value_present: bool, old_present: bool) -> bool:
    """Whether a state is present after `x = value`: see `assigned`."""
    return value_present if assigned(value_present) == "value" else old_present


def integrated_present(old_present: bool, rate_present: bool) -> bool:
    """Whether a state is present after a solver step: it is its old value plus an increment
    (a sum), so it is present once it was or its rate is."""
    return present("add", (old_present, rate_present))
