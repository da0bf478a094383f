"""Source spans, diagnostics with stable codes, and the one error type every stage raises."""
from .catalogue import CATALOGUE, Code
from .diagnostic import EXCERPT_WIDTH, Diagnostic, DynError, DynWarning, Sink, _excerpt, as_errors
from .span import NO_SPAN, Span, source_lines
from .suggest import did_you_mean, unknown

__all__ = ["CATALOGUE", "Code", "Diagnostic", "DynError", "DynWarning", "EXCERPT_WIDTH", "as_errors", "NO_SPAN", "Sink", "Span",
           "did_you_mean", "source_lines", "unknown"]
