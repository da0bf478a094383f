"""Source spans, diagnostics with stable codes, and the one error type every stage raises."""
from .catalogue import CATALOGUE, Code
from .diagnostic import EXCERPT_WIDTH, Diagnostic, DynError, Sink, _excerpt
from .span import NO_SPAN, Span, source_lines
from .suggest import did_you_mean, unknown

__all__ = ["CATALOGUE", "Code", "Diagnostic", "DynError", "EXCERPT_WIDTH", "NO_SPAN", "Sink", "Span",
           "did_you_mean", "source_lines", "unknown"]
