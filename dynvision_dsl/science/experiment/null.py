"""null [intensity 0]: spontaneous activity on a blank screen of the given intensity (0 is
black), for intro + max(20, steps) steps; one blank stimulus, whatever the images. Per area
`mean` is the response averaged over the run, `final` the response at its last step and `max`
the largest: what biases and recurrence do without input (0 everywhere for a model
without biases)."""
from __future__ import annotations

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import simulate
    from .stimulus import blank
    T = settings.intro + max(20, model.steps)
    runs = simulate(model, images[:1], levels, lambda img, idx, v: blank(img, T, float(v)), batch)
    for area in model.areas:
        for v, r in zip(levels, runs):
            course = r.response[area]
            rec.course(area, v, "response", course)
            rec.scalar(area, v, "mean", float(course.mean()))
            rec.scalar(area, v, "final", float(course[-1]))
            rec.scalar(area, v, "max", float(course.max()))


PROTOCOL = Protocol("null", (0.0,), False, ("mean", "final"), "mean", "blank intensity", 0.0, run,
                    "spontaneous activity on a blank screen")
