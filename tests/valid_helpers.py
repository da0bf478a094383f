"""Helpers for the tests of tests/valid/: compile a spec there, and build its emitted
standalone module (the text `dynv compile` writes) with the same weights."""
import re
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
    """An instance of tests/valid/NAME's emitted module's class, holding `model`'s weights and buffers."""
    return standalone_of(source(name), model, params, _file(name))


def standalone_of(text: str, model=None, params: dict | None = None, file: str | None = None) -> torch.nn.Module:
    """An instance of the class `dynv compile` writes for spec `text`, with `model`'s weights and
    buffers when given (else its own seeded ones)."""
    emitted = dd.emit(text, params=params, file=file)
    spec_name = model.program.model.name if model is not None else re.search(r"^model\s+(\w+)", text, re.M)[1]
    name = class_name(spec_name)
    namespace: dict = {"__name__": f"standalone_{name}"}
    exec(compile(emitted, f"<emitted {file or name}>", "exec"), namespace)  # noqa: S102 - our own output
    module = namespace[name]()
    if model is not None:
        module.load_state_dict(model.state_dict())
    return module
