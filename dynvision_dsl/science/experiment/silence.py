"""Connection kinds of a compiled model's parameters, read off its connection graph (each
connection's operators name the modules they own), and silencing the connections of some
kinds by zeroing their terms' weights for the length of a `with` block."""
from __future__ import annotations

from contextlib import contextmanager

import torch

from .protocol import ExperimentError

AREA = "area"  # parameters of no connection (time constants, area-level tensors)


def connection_modules(model) -> list[tuple[str, str, str]]:
    """(module path, kind, connection label) for every operator of every connection."""
    out = []
    for _, _, data in model.graph.edges(data=True):
        for op in data.get("ops", ()):
            out.append((op.path, data["kind"], data.get("label", "")))
    return out


def parameter_kinds(model) -> dict[str, str]:
    """Each parameter's connection kind (feedforward, lateral, skip, feedback, readout), `area` for the rest."""
    owners = connection_modules(model)
    kinds = {}
    for name, _ in model.named_parameters():
        kinds[name] = next((kind for path, kind, _ in owners if _owns(name, path)), AREA)
    return kinds


def weights_by_kind(model) -> dict[str, torch.Tensor]:
    """All parameter values of each connection kind, flattened into one tensor per kind."""
    kinds = parameter_kinds(model)
    groups: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        groups.setdefault(kinds[name], []).append(p.detach().flatten().float().cpu())
    return {k: torch.cat(v) for k, v in groups.items()}


def _owns(name: str, path: str) -> bool:
    return name == path or name.startswith(path + ".")


@contextmanager
def silenced(model, kinds: tuple[str, ...] = ("lateral", "feedback")):
    """Zero the weights (and biases) of every connection of these kinds, then restore them.
    A connection of such a kind with no weights at all cannot be silenced this way: refused."""
    params = dict(model.named_parameters())
    names: set[str] = set()
    for _, _, data in model.graph.edges(data=True):
        if data["kind"] not in kinds:
            continue
        owned = {n for n in params for op in data.get("ops", ()) if _owns(n, op.path)}
        if not owned:
            raise ExperimentError(f"cannot silence the {data['kind']} connection {data.get('label', '')}: it has "
                                  f"no weights to zero; give it a weighted operator or switch it off with an `if`")
        names |= owned
    saved = {n: params[n].detach().clone() for n in names}
    try:
        with torch.no_grad():
            for n in names:
                params[n].zero_()
        yield sorted(names)
    finally:
        with torch.no_grad():
            for n, value in saved.items():
                params[n].copy_(value)
