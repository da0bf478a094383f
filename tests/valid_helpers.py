"""Helpers for the tests of tests/valid/: compile a spec there, and build its emitted
standalone module (the text `dynv compile` writes) with the same weights."""
from pathlib import Path

import torch

import dynvision_dsl as dd

VALID = Path(__file__).resolve().parent / "valid"


def source(name: str) -> str:
    return (VALID / name).read_text()


def compile_valid(name: str, params: dict | None = None):
    """The in-process model of tests/valid/NAME; the spec must check without any warning."""
    text = source(name)
    assert dd.check(text, params=params, file=name) == []
    return dd.compile(text, params=params, file=name)


def standalone(name: str, model, params: dict | None = None) -> torch.nn.Module:
    """An instance of the emitted module's class, holding `model`'s weights and buffers."""
    text = dd.emit(source(name), params=params, file=name)
    namespace: dict = {}
    exec(compile(text, f"<emitted {name}>", "exec"), namespace)
    cls = next(v for k, v in namespace.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and k == type(model).__name__)
    module = cls()
    module.load_state_dict(model.state_dict())
    return module
