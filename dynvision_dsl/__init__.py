"""dynvision-dsl: compile `.dyn` specs of recurrent convolutional networks of
the ventral stream into fast PyTorch modules.

The names that need torch (the model, the pipeline) load on first use, so the
frontend (parse, check) and the editor tooling start without importing torch."""
from __future__ import annotations

from importlib import import_module

from . import check as _check_stage  # noqa: F401 (loaded first: importing the stage later would rebind `check`)
from .diagnostics import Diagnostic, DynError, DynWarning, Span

_LAZY = {"DynModel": "model", "NonFiniteError": "errors", "RunResult": "model", "build": "pipeline",
         "compile": "pipeline", "compile_file": "pipeline", "emit": "pipeline"}

__all__ = ["compile", "compile_file", "check", "emit", "build", "DynModel", "RunResult", "NonFiniteError", "Diagnostic",
           "DynError", "DynWarning", "Span"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Load `name` from its module on first access (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'dynvision_dsl' has no attribute '{name}'")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def check(source, params: dict | None = None, file: str | None = None) -> list[Diagnostic]:
    """Every diagnostic of a spec, errors and warnings, in source order (see pipeline.check)."""
    from .pipeline import check as check_spec

    return check_spec(source, params, file)
