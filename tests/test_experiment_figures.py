"""The figures of `dynv experiment` as figure objects: shaded presentation windows and onset
lines, chance lines under accuracy, time in ms, hollow points and a caption for values pinned
at a window's end, no one-entry legends, and the ridge, unrolling, weights and confusion plots."""
import numpy as np
import pytest
import torch
from matplotlib.patches import FancyArrowPatch

from dynvision_dsl.science import experiment as E
from dynvision_dsl.science.plot import figures as F
from dynvision_dsl.science.plot.confusion import confusion_figure
from dynvision_dsl.science.plot.experiment import measure_figure, timecourse_figure
from dynvision_dsl.science.plot.responses import responses_figure
from dynvision_dsl.science.plot.ridge import ridge_figure
from dynvision_dsl.science.plot.unrolling import unrolling_figure
from dynvision_dsl.science.plot.weights import weights_figure

from test_protocols import CHAIN, LEAKY, REC, conv1, images, model


def gids(ax, what):
    items = {"patch": ax.patches, "line": ax.lines, "collection": ax.collections, "image": ax.images,
             "text": ax.texts}[what]
    return [i.get_gid() for i in items]


def legends(fig):
    return [leg for leg in fig.legends] + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


@pytest.fixture(scope="module")
def duration():
    return E.run_protocol("duration", {"a": conv1(LEAKY), "b": conv1(LEAKY, 0.5)}, images(), levels=[1, 4], intro=3)


def test_timecourses_shade_every_presentation_and_mark_its_onset(duration):
    fig = timecourse_figure(duration)
    ax = fig.axes[0]
    spans = [p for p in ax.patches if p.get_gid() == "window"]
    assert len(spans) == 2  # the 1- and 4-step presentations, both from step 3
    assert sorted(round(p.get_x(), 6) for p in spans) == [3.0, 3.0]  # ms at dt = 1 ms
    assert sorted(round(p.get_width(), 6) for p in spans) == [1.0, 4.0]
    onsets = [ln for ln in ax.lines if ln.get_gid() == "onset"]
    assert len(onsets) == 1 and onsets[0].get_xdata()[0] == 3.0
    assert ax.get_xlabel() == "time (ms)" or fig.axes[-1].get_xlabel() == "time (ms)"
    assert [t.get_text() for t in legends(fig)[0].get_texts()] == ["1 ms", "4 ms"]


def test_interval_windows_are_both_presentations():
    res = E.run_protocol("interval", {"a": conv1(LEAKY)}, images(), levels=[2], intro=3, on=2)
    spans = [p for p in timecourse_figure(res).axes[0].patches if p.get_gid() == "window"]
    assert sorted((p.get_x(), p.get_width()) for p in spans) == [(3.0, 2.0), (7.0, 2.0)]


def test_step_levels_are_drawn_in_ms_and_one_variant_has_no_legend():
    m = conv1(LEAKY, params={"tau": "4 ms"})
    res = E.run_protocol("duration", {"default": m}, images(), levels=[1, 2, 4], intro=2)
    fig = measure_figure(res, "normalised")
    assert fig.axes[0].get_xlabel() == "duration (ms)"
    assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 2.0, 4.0]
    assert legends(fig) == []
    res2 = E.run_protocol("duration", {"x": m}, images(), levels=[2], intro=2)
    assert legends(timecourse_figure(res2)) == [] and "at 2 ms" in timecourse_figure(res2)._suptitle.get_text()


def test_two_variants_get_a_legend(duration):
    fig = measure_figure(duration, "summed")
    assert [t.get_text() for t in legends(fig)[0].get_texts()] == ["a", "b"]


def test_accuracy_has_a_chance_line():
    res = E.run_protocol("noise", {"a": conv1(LEAKY)}, images(4), labels=torch.tensor([0, 1, 0, 1]), levels=[1, 2])
    ax = measure_figure(res, "accuracy").axes[0]
    chance = [ln for ln in ax.lines if ln.get_gid() == "chance"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(0.5)  # two classes
    assert any("chance 50%" in t.get_text() for t in ax.texts)


def test_a_peak_at_the_last_step_is_hollow_and_explained():
    res = E.run_protocol("contrast", {"a": conv1(LEAKY, params={"tau": "20 ms"})}, images(), levels=[0.5, 1],
                         intro=2)
    assert ("a", "A", 1.0, "peak_ms") in res.pinned  # a slow leak still rises at the end of the run
    fig = measure_figure(res, "peak_ms")
    hollow = [ln for ln in fig.axes[0].lines if ln.get_gid() == "pinned"]
    assert len(hollow) == 1 and len(hollow[0].get_xdata()) == 2
    assert any(t.get_gid() == "pinned" and "last step" in t.get_text() for t in fig.texts)
    fast = E.run_protocol("contrast", {"a": conv1(LEAKY, params={"tau": "1 ms"})}, images(), levels=[1], intro=2)
    assert not fast.pinned or all(t.get_gid() != "pinned" for t in measure_figure(fast, "peak_ms").texts)


def test_contrast_draws_time_to_peak_in_ms_only():
    assert E.PROTOCOLS["contrast"].measures == ("peak", "peak_ms")


@pytest.fixture(scope="module")
def response():
    m = model(REC)
    return E.run_protocol("response", {"default": m}, images(), levels=[3], intro=2)


def test_the_ridge_plot_has_one_filled_row_per_area_and_the_window(response):
    ax = ridge_figure(response).axes[0]
    assert [c.get_gid() for c in ax.collections] == ["ridge:A", "ridge:B"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]
    assert [(p.get_x(), p.get_width()) for p in ax.patches if p.get_gid() == "window"] == [(2.0, 3.0)]


def test_the_unrolling_plot_draws_each_connection_from_source_step_to_target_step(response):
    fig = unrolling_figure(response, max_steps=4)
    ax = fig.axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    # image->A and A->B at steps 0..3, A->A (1 ms) at 1..3, B->A (3 ms) at 3
    assert len(arrows) == 4 + 4 + 3 + 1
    assert [t.get_text() for t in ax.get_yticklabels()] == ["image", "A", "B"]
    assert ax.get_xlabel() == "step (engineering time)"
    assert any("biological" in a.get_xlabel() for a in ax.child_axes)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["feedforward", "lateral", "feedback"]


def test_a_delay_leaves_an_area_silent_in_the_unrolling():
    m = model(CHAIN)
    res = E.run_protocol("response", {"default": m}, images(), levels=[2], intro=0)
    ax = unrolling_figure(res, max_steps=4).axes[0]
    marks = [ln.get_gid() for ln in ax.lines]
    assert marks.count("silent") == 2  # B at steps 0 and 1
    assert ax.get_legend() is None  # one kind only: no legend


def test_weights_have_a_panel_per_connection_kind(response):
    fig = weights_figure(response)
    titles = [ax.get_title().split(" (")[0] for ax in fig.axes]
    assert titles == ["feedforward", "lateral", "feedback", "readout"]
    info = response.models["default"]
    m = model(REC)
    assert len(info.weights["lateral"]) == sum(p.numel() for n, p in m.named_parameters() if n.startswith("A_to_A"))


def test_the_confusion_matrix_is_an_image_of_the_shares():
    res = E.run_protocol("confusion", {"m": model(REC)}, images(6), labels=torch.tensor([0, 1, 2, 0, 1, 2]))
    fig = confusion_figure(res)
    ax = fig.axes[0]
    assert ax.images[0].get_gid() == "confusion" and ax.images[0].get_array().shape == (3, 3)
    assert np.allclose(np.asarray(ax.images[0].get_array()).sum(1), 1)
    assert "chance 33%" in ax.get_title()


def test_every_protocol_draws_its_figures(response, duration):
    assert len(F.figures(response)) == len(E.output_paths("response", ".")) - 2
    assert len(F.figures(duration)) == len(E.output_paths("duration", ".")) - 2


def test_responses_of_one_area_have_no_legend():
    m = conv1(LEAKY)
    result = m.run(images().unsqueeze(1).expand(-1, 4, -1, -1, -1))
    fig = responses_figure(result, dt=1.0)
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None  # two classes
    assert fig.axes[0].get_ylabel() == "A: mean |r|"


def test_every_figure_a_protocol_names_is_in_the_figure_table():
    for proto in E.PROTOCOLS.values():
        assert set(proto.figures) <= set(F.FIGURES), proto.name
        assert not proto.model_info or {"unrolling", "weights"} & set(proto.figures)


def test_ffonly_draws_full_and_ffonly_on_the_same_axes():
    from dynvision_dsl.science.plot.experiment import compare_figure

    res = E.run_protocol("ffonly", {"default": model(REC)}, images(), levels=[3], intro=2)
    assert E.PROTOCOLS["ffonly"].figures[0] == "compare"
    fig = compare_figure(res)
    assert [len([ln for ln in ax.lines if ln.get_gid() is None]) for ax in fig.axes] == [2, 2]  # A, B
    assert [t.get_text() for t in legends(fig)[0].get_texts()] == ["full", "ffonly"]
    assert [(p.get_x(), p.get_width()) for p in fig.axes[0].patches if p.get_gid() == "window"] == [(2.0, 3.0)]


def test_titles_fit_and_name_the_noise():
    res = E.run_protocol("noise", {"a": conv1(LEAKY)}, images(4), labels=torch.tensor([0, 1, 0, 1]), levels=[1],
                         noise="poisson", noise_mode="static")
    res.source = "--set size=16 --set steps=6 | stimulus digits (8 images) | seeded weights (--seed 0)"
    fig = measure_figure(res, "accuracy")
    title = fig._suptitle.get_text()
    assert "noise (poisson, static), accuracy" in title
    assert fig.get_figwidth() >= 0.075 * len(res.source)  # the provenance line is not cut off
