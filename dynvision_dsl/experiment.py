"""`dynvision_dsl.experiment`, kept importable: the protocols live in `science/experiment/`
(one module per protocol) and their figures in `science/plot/`.

    models = {"fast": dynvision_dsl.compile(spec, {"tau": "2 ms"}), "slow": dynvision_dsl.compile(spec)}
    result = run_protocol("duration", models, images)
    result.values("normalised")["fast"]["V1"]      # one value per level
    plot_result(result, "runs/exp")
"""
from __future__ import annotations

from .checkpoint import CheckpointError, LoadReport, load_weights  # noqa: F401 (re-exported)
from .science.experiment import *  # noqa: F401,F403
from .science.experiment import __all__ as _science
from .science.plot.experiment import measure_figure, plot_measure, plot_timecourse, timecourse_figure  # noqa: F401
from .science.plot.figures import FIGURES, figures, plot_result, write_figures  # noqa: F401

__all__ = list(_science) + ["CheckpointError", "LoadReport", "load_weights", "measure_figure", "plot_measure",
                            "plot_timecourse", "timecourse_figure", "FIGURES", "figures", "plot_result",
                            "write_figures"]
