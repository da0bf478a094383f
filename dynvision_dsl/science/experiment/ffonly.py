"""ffonly [8 steps]: the model as it is (`full`) and the same weights with every lateral
(recurrent) and feedback connection silenced (`ffonly`: those connections' weights and biases
zeroed, by kind from the compiled graph), side by side. The image is shown for d steps after
`intro` blank steps, then blank for max(20, steps). Per variant and area: `peak` and `summed`
(from onset); for `ffonly` also `divergence` (the first step, from the start of the run, at
which it differs from `full`: the shortest recurrent or feedback delay that reaches the area;
NaN if it never does) and `divergence_ms`."""
from __future__ import annotations

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import first_difference, peak, simulate
    from .silence import silenced
    from .stimulus import show
    intro = settings.intro
    T = intro + max(levels) + max(20, model.steps)
    for d in levels:
        rec.shown(d, (intro, intro + d))

    def make(img, idx, d):
        return show(img, T, [(intro, intro + d)])
    with silenced(model):  # first: a connection that cannot be silenced is refused before anything runs
        ff = simulate(model, images, levels, make, batch)
    full = simulate(model, images, levels, make, batch)
    whole, only = rec.branch("full"), rec.branch("ffonly")
    for area in model.areas:
        for d, a, b in zip(levels, full, ff):
            for sub, r in ((whole, a), (only, b)):
                course = r.response[area]
                sub.course(area, d, "response", course)
                sub.scalar(area, d, "peak", peak(course, intro, T)[0])
                sub.scalar(area, d, "summed", float(course[intro:].sum()))
            step = first_difference(a.response[area], b.response[area])
            only.scalar(area, d, "divergence", step)
            only.scalar(area, d, "divergence_ms", step * rec.dt)


PROTOCOL = Protocol("ffonly", (8,), True, ("peak", "summed"), "summed", "presentation", 1, run,
                    "the model beside itself with recurrence and feedback silenced", steps_axis=True,
                    figures=("compare", "timecourse"))
