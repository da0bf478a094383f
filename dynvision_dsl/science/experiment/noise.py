"""noise [SNR 0.25, 0.5, 1, 2, 4, 8]: the image under noise of kind `--noise` (gaussian by
default: sigma = std(image) / SNR, not clipped; see stimulus.py for the others), for `steps`
steps without intro; `--noise-mode dynamic` (default) draws a fresh sample at every step,
`static` one for all steps. Each image has its own seeded noise (seed, image index), the same
at every SNR and for every variant. `accuracy` is the share of images whose logits' argmax at
the last step is their label (area `readout`, empty step); with a step, the same per step for
the steps at which the readout is present. Needs labelled images."""
from __future__ import annotations


from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    import torch
    from .measure import check_labels, simulate
    from .stimulus import generator, noisy
    first = check_labels(model, images, labels, "noise")
    T = model.steps
    static = settings.noise_mode == "static"

    def make(img, idx, snr):
        return torch.stack([noisy(settings.noise, im, snr, T, generator(settings.seed, int(i)), static)
                            for im, i in zip(img, idx)]).to(img.dtype)
    for snr in levels:
        rec.shown(snr, (0, T))
    runs = simulate(model, images, levels, make, batch, labels)
    for snr, r in zip(levels, runs):
        for area in model.areas:
            rec.course(area, snr, "response", r.response[area])
        rec.course("readout", snr, "accuracy", r.correct, first=first)
        rec.scalar("readout", snr, "accuracy", r.correct[-1])


PROTOCOL = Protocol("noise", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), False, ("accuracy",), "accuracy",
                    "signal-to-noise ratio", 0.0, run, "accuracy against the signal-to-noise ratio (--noise KIND)",
                    strict=True, labelled=True)
