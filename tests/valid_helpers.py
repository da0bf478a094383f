"""Helpers for the tests of tests/valid/: compile a spec there, and build its emitted
standalone module (the text `dynv compile` writes) with the same weights."""
from pathlib import Path

import torch

import dynvision_dsl as dd
from dynvision_dsl.render import class_name

VALID = Path(__file__).resolve().parent / "valid"


def _file(name: str) -> str:
    """`generators` and `generators.dyn` both name tests/valid/generators.dyn."""
    return name if name.endswith(".dyn") else f"{name}.dyn"


def source(name: str) -> str:
    return (VALID / _file(name)).read_text()


def compiled(name: str, **kw):
    """The in-process model of tests/valid/NAME (seeded, so weights are reproducible)."""
    torch.manual_seed(0)
    return dd.compile(VALID / _file(name), **kw)


def compile_valid(name: str, params: dict | None = None):
    """The in-process model of tests/valid/NAME; the spec must check without any warning."""
    text = source(name)
    assert dd.check(text, params=params, file=_file(name)) == []
    return dd.compile(text, params=params, file=_file(name))


def standalone(name: str, model, params: dict | None = None) -> torch.nn.Module:
    """An instance of the emitted module's class, holding `model`'s weights and buffers."""
    text = dd.emit(source(name), params=params, file=_file(name))
    namespace: dict = {"__name__": f"standalone_{Path(_file(name)).stem}"}
    exec(compile(text, f"<emitted {name}>", "exec"), namespace)
    module = namespace[class_name(model.program.model.name)]()
    module.load_state_dict(model.state_dict())
    return module
