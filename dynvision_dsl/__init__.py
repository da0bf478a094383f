"""dynvision-dsl: compile `.dyn` specs of recurrent convolutional networks of
the ventral stream into fast PyTorch modules."""
from .diagnostics import Diagnostic, DynError, Span
from .model import DynModel, NonFiniteError, RunResult
from .pipeline import build, check, compile, compile_file, emit

__all__ = ["compile", "compile_file", "check", "emit", "build", "DynModel", "RunResult", "NonFiniteError", "Diagnostic",
           "DynError", "Span"]
__version__ = "0.1.0"
