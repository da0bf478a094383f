"""The one table of an experiment's figures (a protocol names the ones it draws), and writing
them: NAME_<measure>.png per drawn measure, then NAME_<figure>.png per figure."""
from __future__ import annotations

from pathlib import Path

from ..experiment.result import ExperimentResult
from ..experiment.runner import output_paths
from ..experiment.table import PROTOCOLS
from .confusion import confusion_figure
from .experiment import compare_figure, measure_figure, timecourse_figure
from .figure import save_png
from .ridge import ridge_figure
from .unrolling import unrolling_figure
from .weights import weights_figure

FIGURES = {"timecourse": timecourse_figure, "compare": compare_figure, "ridge": ridge_figure, "unrolling": unrolling_figure,
           "weights": weights_figure, "matrix": confusion_figure}
DPI = 110


def figures(result: ExperimentResult) -> list:
    """The protocol's figures, in the order of its output files (measures first)."""
    proto = PROTOCOLS[result.protocol]
    return ([measure_figure(result, m, DPI) for m in proto.measures]
            + [FIGURES[f](result, dpi=DPI) for f in proto.figures])


def write_figures(result: ExperimentResult, paths: list) -> list[Path]:
    """Draw and write each figure to its path (as listed by `output_paths`, without CSV and JSON)."""
    return [save_png(fig, path, DPI) for fig, path in zip(figures(result), paths)]


def plot_result(result: ExperimentResult, out_dir: str | Path, name: str | None = None) -> list[Path]:
    """Write every figure of the result into `out_dir`; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_figures(result, output_paths(result.protocol, out_dir, name)[1:-1])
