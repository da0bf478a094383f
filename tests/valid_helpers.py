"""Helpers for the tests/valid corpus: compile a spec there, and load its emitted standalone module."""
from pathlib import Path

import torch

import dynvision_dsl as dd
from dynvision_dsl.render import class_name

VALID = Path(__file__).resolve().parent / "valid"


def compiled(name: str, **kw):
    """The in-process model of tests/valid/NAME.dyn (seeded, so weights are reproducible)."""
    torch.manual_seed(0)
    return dd.compile(VALID / f"{name}.dyn", **kw)


def standalone(name: str, model):
    """The emitted module's class for tests/valid/NAME.dyn, instantiated with `model`'s weights."""
    path = VALID / f"{name}.dyn"
    source = dd.emit(path)
    namespace: dict = {"__name__": f"standalone_{name}"}
    exec(compile(source, f"<emitted {name}>", "exec"), namespace)
    module = namespace[class_name(model.program.model.name)]()
    module.load_state_dict(model.state_dict())
    return module
