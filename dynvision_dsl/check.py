"""Stage 2's public names at their old place: the checker lives in `frontend/check/`."""
from .frontend.check import GENERATED_ATTRIBUTES, MODULE_ATTRIBUTES, SOLVERS, TIME_ITEMS, check_module, param_values
from .middle.algebra import linear_split

__all__ = ["GENERATED_ATTRIBUTES", "MODULE_ATTRIBUTES", "SOLVERS", "TIME_ITEMS", "check_module", "linear_split",
           "param_values"]
