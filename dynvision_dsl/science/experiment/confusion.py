"""confusion [the images' classes]: labelled images shown for the model's `steps` (as in
training); the readout's argmax at the last step against the label. Per true class k (the
level) `accuracy` is the share of its images classified right and `predicted_j` the share
predicted as class j (one row per j: the confusion matrix, rows summing to 1); `accuracy`
without a level is the share of all images. Drawn as the confusion matrix."""
from __future__ import annotations


from .protocol import Protocol


def run(model, images, levels, batch, rec, settings, labels=None) -> None:
    """Show this protocol's stimuli to `model` and record the measures the module describes in `rec`."""
    import numpy as np
    from .measure import check_labels, simulate
    from .stimulus import show
    check_labels(model, images, labels, "confusion")
    T = model.steps
    (r,) = simulate(model, images, [None], lambda img, idx, _: show(img, T, [(0, T)]), batch, labels)
    truth = labels.numpy()
    for area in model.areas:
        rec.course(area, None, "response", r.response[area])
    for k in levels:
        mine = r.predicted[truth == k]
        rec.scalar("readout", k, "accuracy", float(np.mean(mine == k)) if len(mine) else np.nan)
        for j in range(model.classes):
            rec.scalar("readout", k, f"predicted_{j}", float(np.mean(mine == j)) if len(mine) else np.nan)
    rec.scalar("readout", None, "accuracy", float(np.mean(r.predicted == truth)))


PROTOCOL = Protocol("confusion", (), True, ("accuracy",), "accuracy", "class", 0, run,
                    "the confusion matrix of the readout at the last step", labelled=True, fixed_levels=True,
                    figures=("matrix",))
