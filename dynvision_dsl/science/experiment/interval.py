"""interval [gaps 1, 2, 4, 8, 16, 32, 64 steps]: after `intro` blank steps, the image for `on`
steps, a blank gap g, the image again for `on` steps, then blank up to a common end
intro + 2 on + max(g) + max(10, steps). Two control runs, a blank one and one with a single
presentation, give each area's latency L (`latency`, `latency_ms`, empty level): the first
step from onset at which the evoked response (single minus blank) exceeds 10% of its peak.
`peak1` is the peak over [o1 + L, o2 + L), `peak2` over [o2 + L, o2 + L + on + g) (clipped to
the run), `ratio` = peak2 / peak1 (NaN when peak1 is 0 or a window is empty)."""
from __future__ import annotations

import math

from .protocol import Protocol
from .protocol import ExperimentError


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    from .measure import latency, peak, simulate
    from .stimulus import show
    intro, on = settings.intro, settings.on
    if on < 1:
        raise ExperimentError(f"the interval protocol needs on >= 1 step, got {on}")
    T = intro + 2 * on + max(levels) + max(10, model.steps)

    def windows(gap):  # "blank": no image; "control": a single presentation
        return ([] if gap == "blank" else [(intro, intro + on)] if gap == "control"
                else [(intro, intro + on), (intro + on + gap, intro + 2 * on + gap)])
    for gap in levels:
        rec.shown(gap, *windows(gap))
    blank, control, *runs = simulate(model, images, ["blank", "control"] + list(levels),
                                     lambda img, idx, gap: show(img, T, windows(gap)), batch)
    for area in model.areas:
        rec.course(area, None, "blank_response", blank.response[area])
        rec.course(area, None, "control_response", control.response[area])
        lat = latency(control.response[area] - blank.response[area], intro)
        rec.scalar(area, None, "latency", lat)
        rec.scalar(area, None, "latency_ms", lat * rec.dt)
        for gap, r in zip(levels, runs):
            _peaks(rec, area, gap, r.response[area], lat, intro, on)


def _peaks(rec, area, gap, course, lat, intro, on) -> None:
    """peak1, peak2 and their ratio for one gap (NaN without a latency)."""
    from .measure import peak

    onset2 = intro + on + gap
    rec.course(area, gap, "response", course)
    if math.isnan(lat):
        p1 = p2 = math.nan
    else:
        L = int(lat)
        p1, _ = peak(course, intro + L, onset2 + L)
        p2, at = peak(course, onset2 + L, onset2 + L + on + gap)
        if at is not None and at == len(course) - 1 and onset2 + L + on + gap > len(course):
            rec.pin(area, gap, "peak2", "ratio")  # the window runs past the end and the peak is its last step
    rec.scalar(area, gap, "peak1", p1)
    rec.scalar(area, gap, "peak2", p2)
    rec.scalar(area, gap, "ratio", p2 / p1 if p1 > 0 and not math.isnan(p2) else math.nan)


PROTOCOL = Protocol("interval", (1, 2, 4, 8, 16, 32, 64), True, ("ratio", "peak1", "peak2"), "ratio",
                    "gap", 0, run, "adaptation: two presentations separated by a gap", steps_axis=True)
