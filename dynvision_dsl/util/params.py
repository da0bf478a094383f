"""`--set NAME=VALUE` pairs to a params dict, shared by every subcommand and the science layer.

Errors about a param quote it the way the user gave it: `--set size=abc` for one
typed on the command line (a `SetParams` remembers each), `params={'size': 'abc'}`
for one passed to the API in a plain dict."""
from __future__ import annotations

import numbers
import reprlib
from typing import Any, Mapping

_SHORT = reprlib.Repr()  # a value quoted in a message: long ones are cut (`1000...0000`)
_SHORT.maxstring = _SHORT.maxlong = _SHORT.maxother = 40


class SetParams(dict):
    """Params that remember how each was typed (`--set size=64`, `--sweep tau=2 ms`), so that
    errors can quote it; merging with `|` keeps that. Save `dict(params)`: checkpoints are read
    with weights_only, which loads no custom class."""

    def __init__(self, values: Mapping | None = None, origins: Mapping[str, str] | None = None):
        super().__init__(values or {})
        self.origins = {k: v for k, v in (origins or {}).items() if k in self}

    def __or__(self, other: Mapping) -> "SetParams":
        return _merge(self, other)

    def __ror__(self, other: Mapping) -> "SetParams":
        return _merge(other, self)

    def copy(self) -> "SetParams":
        return SetParams(self, self.origins)


def _merge(first: Mapping, second: Mapping) -> SetParams:
    """`first` updated by `second`, each value keeping how it was typed."""
    origins = {k: v for k, v in getattr(first, "origins", {}).items() if k not in second}
    origins.update(getattr(second, "origins", {}))
    return SetParams({**first, **second}, origins)


def parse_set(pairs: list[str] | None, flag: str = "--set") -> SetParams:
    """The params named by `--set` pairs; a malformed pair ends the command with a message."""
    out = SetParams()
    for pair in pairs or []:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise SystemExit(f"dynv: {flag} needs NAME=VALUE, got '{pair}'")
        out[name.strip()] = value.strip()
        out.origins[name.strip()] = f"{flag} {name.strip()}={value.strip()}"
    return out


def recorded(params: Mapping[str, str], where: str) -> SetParams:
    """Params read back from a file (a checkpoint's), quoted as the `--set` they were."""
    return SetParams(params, {k: f"--set {k}={v} (from {where})" for k, v in params.items()})


def short(value: Any) -> str:
    """`repr(value)`, cut in the middle when long."""
    return _SHORT.repr(value)


def origin(params: Mapping, name: str) -> str:
    """How param `name` was given: `--set size=abc`, or `params={'size': 'abc'}` in the API."""
    typed = getattr(params, "origins", {}).get(name)
    return typed if typed is not None else f"params={{{name!r}: {_SHORT.repr(params[name])}}}"


def example(params: Mapping, name: str, text: str) -> str:
    """How to give param `name` the value `text` the way the user gives params."""
    if name in getattr(params, "origins", {}):
        return f"--set {name}={text}"
    for kind in (int, float):
        try:
            return f"params={{{name!r}: {kind(text)!r}}}"
        except ValueError:
            pass
    return f"params={{{name!r}: {text!r}}}"


def problems(params: Any) -> list[tuple[str, str]]:
    """(quote, message) for each entry of an API `params` that no param can take: a key that is not
    a string, a value that is not a bool, a number or a string (a list, a dict, None)."""
    if not isinstance(params, Mapping):
        return [("params", f"params must be a dict of param names to values, got {type(params).__name__}")]
    out = []
    for key, value in params.items():
        if not isinstance(key, str):
            out.append(("params", f"params keys are param names (strings), got {key!r} "
                                  f"({type(key).__name__})"))
        elif not isinstance(value, (bool, str, numbers.Real)):
            out.append((origin(params, key), f"param '{key}' takes a number, a bool or a string such as "
                                             f"'5 ms', not {type(value).__name__}"))
    return out
