"""Pictures of a compiled model, kept importable from here: the connectivity drawing
(`draw_graph`, `graph_to_dot`, `short_pipeline`) and a run's time courses (`plot_responses`)
live in `science/plot/`.

    m = dynvision_dsl.compile(text)
    draw_graph(m.graph, "model.svg")
    plot_responses(m.run(x), "responses.png", dt=m.dt, idle=m.idle)

Everything renders off screen (matplotlib's Agg canvas, never pyplot) and every file is
written atomically.
"""
from __future__ import annotations

from .science.plot.graph import draw_graph, graph_to_dot
from .science.plot.labels import short_pipeline
from .science.plot.responses import plot_responses

__all__ = ["graph_to_dot", "draw_graph", "plot_responses", "short_pipeline"]
