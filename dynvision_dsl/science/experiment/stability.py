"""stability [10x]: the image shown for k times the model's `steps` (the length it was trained
for), without intro: is activity bounded? Per area `early` is the mean response over the first
`steps` steps, `late` over the last `steps`, `growth` = late / early (NaN when early is 0; well
above 1: the response grows past the trained window) and `max` the largest response."""
from __future__ import annotations

import math

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import simulate
    from .stimulus import show
    n = model.steps
    T = max(levels) * n
    for k in levels:
        rec.shown(k, (0, k * n))
    runs = simulate(model, images, levels, lambda img, idx, k: show(img, T, [(0, k * n)]), batch)
    for area in model.areas:
        for k, r in zip(levels, runs):
            course = r.response[area][:k * n]
            early, late = float(course[:n].mean()), float(course[-n:].mean())
            rec.course(area, k, "response", course)
            rec.scalar(area, k, "early", early)
            rec.scalar(area, k, "late", late)
            rec.scalar(area, k, "growth", late / early if early > 0 else math.nan)
            rec.scalar(area, k, "max", float(course.max()))
            if course.max() > 0 and int(course.argmax()) == len(course) - 1:
                rec.pin(area, k, "max", "late", "growth")  # still growing when the run ends


PROTOCOL = Protocol("stability", (10,), True, ("growth", "late", "max"), "growth",
                    "run length (x steps)", 2, run, "a run k times the trained length: is activity bounded?")
