"""idle [0, 5, 10, 20, 40 blank steps]: warm-up length. n blank steps (after the model's own
`idle` steps), then the image to a common end max(n) + steps. Per area `final` is the response
`steps` steps after onset (the end of a trained-length presentation), `peak` the largest
response over those steps; with labelled images `accuracy` (area readout) is the share
classified right at that step. A model whose response still depends on n needs a warm-up."""
from __future__ import annotations

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import simulate
    from .stimulus import show
    n = model.steps
    T = max(levels) + n
    for k in levels:
        rec.shown(k, (k, T))
    usable = labels if labels is not None and int(labels.max()) < model.classes else None
    runs = simulate(model, images, levels, lambda img, idx, k: show(img, T, [(k, T)]), batch, usable)
    for k, r in zip(levels, runs):
        for area in model.areas:
            course = r.response[area]
            rec.course(area, k, "response", course)
            rec.scalar(area, k, "final", float(course[k + n - 1]))
            rec.scalar(area, k, "peak", float(course[k:k + n].max()))
        if r.correct is not None:
            rec.scalar("readout", k, "accuracy", float(r.correct[k + n - 1]))


PROTOCOL = Protocol("idle", (0, 5, 10, 20, 40), True, ("final", "peak"), "final", "warm-up", 0, run,
                    "response against the number of blank warm-up steps", steps_axis=True)
