"""duration [1, 2, 4, 8, 16 steps]: `intro` blank steps, the image for d steps, blank up to a
common end intro + max(d) + max(10, steps). `summed` is the response summed from onset to the
end (the intro is the same baseline for every duration, so it is left out); `normalised` is
`summed` over its largest value across durations (NaN for an area that never responds):
temporal summation."""
from __future__ import annotations

import math

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import simulate
    from .stimulus import show
    intro = settings.intro
    T = intro + max(levels) + max(10, model.steps)
    for d in levels:
        rec.shown(d, (intro, intro + d))
    runs = simulate(model, images, levels, lambda img, idx, d: show(img, T, [(intro, intro + d)]), batch)
    for area in model.areas:
        summed = [float(r.response[area][intro:].sum()) for r in runs]  # from onset: the intro is baseline
        top = max(summed)
        for d, r, value in zip(levels, runs, summed):
            rec.course(area, d, "response", r.response[area])
            rec.scalar(area, d, "summed", value)
            rec.scalar(area, d, "normalised", value / top if top > 0 else math.nan)


PROTOCOL = Protocol("duration", (1, 2, 4, 8, 16), True, ("summed", "normalised"), "normalised",
                    "duration", 1, run, "temporal summation: the image for d steps", steps_axis=True)
