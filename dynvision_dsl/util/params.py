"""`--set NAME=VALUE` pairs to a params dict, shared by every subcommand and the science layer."""
from __future__ import annotations


def parse_set(pairs: list[str] | None) -> dict[str, str]:
    """The params named by `--set` pairs; a malformed pair ends the command with a message."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise SystemExit(f"dynv: --set needs NAME=VALUE, got '{pair}'")
        out[name.strip()] = value.strip()
    return out
