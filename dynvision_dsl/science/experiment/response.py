"""response [8 steps]: the time course of every area's response to an image shown for d
steps after `intro` blank steps, then blank for max(20, steps). A blank control run gives
the evoked response (image run minus blank run): `latency` (first step from onset above 10%
of the evoked peak; also `latency_ms`), `peak` (the largest response from onset on) and
`peak_ms` (its time from onset). Drawn as a ridge plot, with the model's unrolling (each
connection from its source step to its target step) and its weights by connection kind."""
from __future__ import annotations

import math

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import latency, peak, simulate
    from .stimulus import show
    intro = settings.intro
    T = intro + max(levels) + max(20, model.steps)
    for d in levels:
        rec.shown(d, (intro, intro + d))
    blank, *runs = simulate(model, images, ["blank"] + list(levels),
                            lambda img, idx, d: show(img, T, [] if d == "blank" else [(intro, intro + d)]), batch)
    for area in model.areas:
        for d, r in zip(levels, runs):
            course = r.response[area]
            rec.course(area, d, "response", course)
            lat = latency(course - blank.response[area], intro)
            top, at = peak(course, intro, T)
            step = at - intro if top > 0 else math.nan
            rec.scalar(area, d, "latency", lat)
            rec.scalar(area, d, "latency_ms", lat * rec.dt)
            rec.scalar(area, d, "peak", top)
            rec.scalar(area, d, "peak_ms", step * rec.dt)
            if top > 0 and at == T - 1:
                rec.pin(area, d, "peak", "peak_ms")


PROTOCOL = Protocol("response", (8,), True, ("peak", "peak_ms", "latency_ms"), "latency_ms", "presentation", 1,
                    run, "each area's response time course to an image shown for d steps", steps_axis=True,
                    figures=("timecourse", "ridge", "unrolling", "weights"), model_info=True)
