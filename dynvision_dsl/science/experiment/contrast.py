"""contrast [0.05, 0.1, 0.2, 0.4, 0.7, 1.0]: image' = m + c (image - m), m the image's mean
intensity, shown from step `intro` to the end, T = intro + max(20, steps). `peak` is the
largest response from onset on; `peak_step` its step counted from onset (time to peak; NaN
when the area never responds) and `peak_ms` the same in ms. A peak at the last step is
flagged in the figures: the response may still be rising."""
from __future__ import annotations

import math

from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import peak, simulate
    from .stimulus import blank
    intro = settings.intro
    T = intro + max(20, model.steps)

    def make(img, idx, c):
        m = img.mean(dim=tuple(range(1, img.dim())), keepdim=True)
        x = blank(img, T)
        x[:, intro:] = (m + c * (img - m)).unsqueeze(1)
        return x
    for c in levels:
        rec.shown(c, (intro, T))
    runs = simulate(model, images, levels, make, batch)
    for area in model.areas:
        for c, r in zip(levels, runs):
            course = r.response[area]
            rec.course(area, c, "response", course)
            top, at = peak(course, intro, T)
            step = at - intro if top > 0 else math.nan
            rec.scalar(area, c, "peak", top)
            rec.scalar(area, c, "peak_step", step)
            rec.scalar(area, c, "peak_ms", step * rec.dt)
            if top > 0 and at == T - 1:
                rec.pin(area, c, "peak", "peak_step", "peak_ms")


PROTOCOL = Protocol("contrast", (0.05, 0.1, 0.2, 0.4, 0.7, 1.0), False, ("peak", "peak_ms"), "peak",
                    "contrast", 0.0, run, "peak response and time to peak against the image's contrast")
