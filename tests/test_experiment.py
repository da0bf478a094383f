"""`dynv experiment`: protocol measures against closed forms and known behaviour, the CSV
and PNGs, sweeps, checkpoints (strict and partial loads) and the CLI's refusals."""
import csv

import numpy as np
import pytest
import torch

import dynvision_dsl as dv
from dynvision_dsl import checkpoint, data
from dynvision_dsl import experiment as E
from dynvision_dsl.cli import main

from conftest import ROOT


pytestmark = pytest.mark.usefixtures("one_thread")


LEAKY = """model Leaky
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param tau = 2 ms
area A [1] { tau * dr/dt = -r + input }
image -> A : conv(1)
readout A : avgpool | linear(2)
"""

# a centre-surround kernel that sums to zero, without padding: blind to the mean intensity
EDGES = """model Edges
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param tau = 4 ms
area A [1] { tau * dr/dt = -r + input }
image -> A : conv(3, padding=0)
readout A : avgpool | linear(2)
"""

ADAPT = """model Adapt
time { dt = 1 ms  steps = 8 }
input image [1, 8, 8]
param tau = 1 ms
param tau_a = 10 ms
param w_a = 1
area A [1] {
  state a = 0
  tau * dr/dt = -r + input - w_a * a
  tau_a * da/dt = -a + r
  r = relu(r)
}
image -> A : conv(1)
readout A : avgpool | linear(2)
"""

TEMPLATE = """model Template
time { dt = 1 ms  steps = 3 }
input image [1, 8, 8]
area A [1] { r = input }
image -> A : conv(1)
readout A : flatten | linear(10)
"""

REC = """model Rec
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param tau = 2 ms
param rec = false
area A [2] {
  tau * dr/dt = -r + input
  r = relu(r)
}
image -> A : conv(3)
if rec { A -> A : conv(3), delay 1 ms }
readout A : avgpool | linear(10)
"""


def with_weights(source, params=None, **tensors):
    """Compile, then set named tensors (a float fills the tensor)."""
    torch.manual_seed(0)
    model = dv.compile(source, {k: str(v) for k, v in (params or {}).items()})
    sd = model.state_dict()
    for key, value in tensors.items():
        sd[key.replace("__", ".")].copy_(torch.as_tensor(value).expand_as(sd[key.replace("__", ".")]))
    model.load_state_dict(sd)
    return model


def conv1(source, w=1.0, params=None):
    return with_weights(source, params, image_to_A__conv__weight=w, image_to_A__conv__bias=0.0)


def images(n=3, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------ duration
def test_duration_matches_the_closed_form_of_a_linear_leak():
    w, q = 0.7, 0.5  # conv weight; 1 - dt/tau
    x = images(4)
    levels = [1, 2, 3, 5, 8]
    res = E.run_protocol("duration", {"leaky": conv1(LEAKY, w)}, x, levels=levels, batch=3)
    T = E.INTRO + max(levels) + max(10, 4)
    mean = w * x.mean().item()
    expect = []
    for d in levels:
        rise = sum(1 - q ** k for k in range(1, d + 1))
        decay = (1 - q ** d) * sum(q ** j for j in range(1, T - E.INTRO - d + 1))
        expect.append(mean * (rise + decay))
    summed = res.values("summed")["leaky"]["A"]
    np.testing.assert_allclose(summed, expect, rtol=1e-5)
    assert np.all(np.diff(summed) > 0)
    normalised = res.values("normalised")["leaky"]["A"]
    assert normalised.max() == 1.0 and normalised[-1] == 1.0
    np.testing.assert_allclose(normalised, np.array(expect) / expect[-1], rtol=1e-5)
    course = res.timecourse("leaky", "A", 3)
    assert len(course) == T and course[:E.INTRO].max() == 0
    np.testing.assert_allclose(course[E.INTRO:E.INTRO + 3], [mean * (1 - q ** k) for k in (1, 2, 3)], rtol=1e-5)


def test_batching_does_not_change_the_values():
    x = images(5)
    model = conv1(LEAKY, 0.3)
    a = E.run_protocol("duration", {"m": model}, x, levels=[1, 4], batch=1)
    b = E.run_protocol("duration", {"m": model}, x, levels=[1, 4], batch=64)
    np.testing.assert_allclose(a.values("summed")["m"]["A"], b.values("summed")["m"]["A"], rtol=1e-6)


# ------------------------------------------------------------------ contrast
def test_contrast_peak_scales_with_contrast_and_a_leak_peaks_at_the_last_step():
    kernel = -torch.ones(1, 1, 3, 3)
    kernel[0, 0, 1, 1] = 8
    model = with_weights(EDGES, None, image_to_A__conv__weight=kernel, image_to_A__conv__bias=0.0)
    levels = [0.1, 0.4, 1.0]
    res = E.run_protocol("contrast", {"edges": model}, images(3), levels=levels)
    peak = res.values("peak")["edges"]["A"]
    assert peak[0] > 0 and np.all(np.diff(peak) > 0)
    np.testing.assert_allclose(peak / peak[-1], levels, rtol=1e-4)  # the kernel ignores the mean
    T = E.INTRO + 20
    assert list(res.values("peak_step")["edges"]["A"]) == [T - 1 - E.INTRO] * 3
    assert list(res.values("peak_ms")["edges"]["A"]) == [(T - 1 - E.INTRO) * 1.0] * 3
    later = E.run_protocol("contrast", {"edges": model}, images(3), levels=[1.0], intro=5)
    assert later.timecourse("edges", "A", 1.0)[:5].max() == 0
    assert later.values("peak_step")["edges"]["A"][0] == 20 - 1  # still counted from onset
    assert later.values("peak")["edges"]["A"][0] == pytest.approx(peak[-1], rel=1e-6)


def test_contrast_peak_step_of_a_silent_area_is_nan():
    res = E.run_protocol("contrast", {"off": conv1(EDGES, 0.0)}, images(2), levels=[0.5, 1.0])
    assert list(res.values("peak")["off"]["A"]) == [0.0, 0.0]
    assert np.isnan(res.values("peak_step")["off"]["A"]).all()


# ------------------------------------------------------------------ interval
def test_interval_adaptation_depresses_the_second_response_and_recovers_with_the_gap():
    variants = {"adapt": conv1(ADAPT), "leak": conv1(ADAPT, params={"tau": "2 ms", "w_a": 0})}
    levels = [1, 2, 4, 8, 16, 32, 64]
    res = E.run_protocol("interval", variants, images(3), levels=levels)
    ratio = res.values("ratio")
    adapt, leak = ratio["adapt"]["A"], ratio["leak"]["A"]
    assert adapt[0] < 0.9 and np.all(np.diff(adapt) > 0) and 0.95 < adapt[-1] < 1
    assert leak[0] > 1.001 and np.all(leak >= 1 - 1e-6)  # a leak summates (a little, once near its plateau)
    np.testing.assert_allclose(adapt, res.values("peak2")["adapt"]["A"] / res.values("peak1")["adapt"]["A"])
    assert res.scalar("latency", "adapt", "A") == 0
    control = res.timecourse("adapt", "A", None, "control_response")
    assert control[:E.INTRO].max() == 0 and control[E.INTRO] > 0


def test_interval_latency_follows_a_delayed_area_above_its_baseline():
    delayed = LEAKY.replace("image -> A : conv(1)", "image -> A : conv(1), delay 3 ms")
    model = with_weights(delayed, None, image_to_A__conv__weight=1.0, image_to_A__conv__bias=0.5)
    res = E.run_protocol("interval", {"d": model}, images(2), levels=[1, 4])
    blank = res.timecourse("d", "A", None, "blank_response")
    assert blank[:3].max() == 0 and blank[3] > 0  # the bias arrives 3 steps in, before the image does
    assert res.scalar("latency", "d", "A") == 3
    assert res.scalar("latency_ms", "d", "A") == 3.0
    assert (res.values("ratio")["d"]["A"] >= 1 - 1e-6).all()


# --------------------------------------------------------------------- noise
def template_model(train):
    """Nearest-template readout: linear weights are the centred class means."""
    x = train.images.flatten(1)
    means = torch.stack([x[train.labels == k].mean(0) for k in range(10)])
    weight = means - means.mean(0)
    bias = -(weight * means).sum(1) / 2 + (weight * means.mean(0)).sum(1) / 2
    return with_weights(TEMPLATE, None, image_to_A__conv__weight=1.0, image_to_A__conv__bias=0.0,
                        readout__linear__weight=weight, readout__linear__bias=bias)


def test_noise_accuracy_is_clean_at_a_huge_snr_and_drops_with_noise():
    train, test = data.split(data.digits((1, 8, 8)), 0.2, seed=0)
    model = template_model(train)
    x, y = test.images[:60], test.labels[:60]
    with torch.no_grad():
        clean = (model(x)[:, -1].argmax(-1) == y).double().mean().item()
    assert clean > 0.5
    res = E.run_protocol("noise", {"t": model}, x, labels=y, levels=[0.1, 1e6], batch=25, seed=3)
    acc = res.values("accuracy")["t"]["readout"]
    assert acc[1] == pytest.approx(clean) and acc[0] < clean - 0.2
    per_step = res.timecourse("t", "readout", 1e6, "accuracy")
    assert len(per_step) == 3 and per_step == pytest.approx([clean] * 3)
    again = E.run_protocol("noise", {"t": model}, x, labels=y, levels=[0.1], batch=7, seed=3)
    other = E.run_protocol("noise", {"t": model}, x, labels=y, levels=[0.1], batch=25, seed=4)
    same = res.timecourse("t", "A", 0.1)
    np.testing.assert_allclose(again.timecourse("t", "A", 0.1), same, rtol=1e-6)  # noise per image, not batch
    assert not np.allclose(other.timecourse("t", "A", 0.1), same)


def test_noise_needs_labels():
    with pytest.raises(E.ExperimentError, match="labelled images"):
        E.run_protocol("noise", {"t": conv1(TEMPLATE)}, images(2))


# ------------------------------------------------------------------- levels
def test_levels_are_checked():
    assert E.parse_levels("duration", "8,1,2,2") == [1, 2, 8]
    assert E.parse_levels("contrast", "0.5, 1") == [0.5, 1.0]
    for name, text in [("duration", "0"), ("duration", "1.5"), ("noise", "0"), ("contrast", "-1"),
                       ("interval", "x")]:
        with pytest.raises(E.ExperimentError):
            E.parse_levels(name, text)


def test_sweeps_make_a_cartesian_product():
    points = E.sweep_params({"a": "1"}, [E.parse_sweep("b=x,y"), E.parse_sweep("c=1,2")])
    assert [label for label, _ in points] == ["b=x c=1", "b=x c=2", "b=y c=1", "b=y c=2"]
    assert points[1][1] == {"a": "1", "b": "x", "c": "2"}
    with pytest.raises(E.ExperimentError):
        E.parse_sweep("b=")


# ----------------------------------------------------------------------- CLI
def test_cli_sweep_writes_csv_and_pngs_and_refuses_to_overwrite(tmp_path, capsys):
    spec = tmp_path / "adapt.dyn"
    spec.write_text(ADAPT)
    out = tmp_path / "out"
    argv = ["experiment", "interval", str(spec), "--sweep", "w_a=0,1", "--sweep", "tau_a=10ms,20ms",
            "--n-images", "3", "--levels", "1,4", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ratio by gap (steps)" in printed and "w_a=1 tau_a=20ms" in printed
    rows = read_csv(out / "interval.csv")
    assert list(rows[0]) == list(E.COLUMNS)
    assert {r["variant"] for r in rows} == {"w_a=0 tau_a=10ms", "w_a=0 tau_a=20ms", "w_a=1 tau_a=10ms",
                                            "w_a=1 tau_a=20ms"}
    ratios = [r for r in rows if r["measure"] == "ratio"]
    assert len(ratios) == 4 * 2 and all(r["step"] == "" and r["level"] in ("1", "4") for r in ratios)
    resp = [r for r in rows if r["measure"] == "response" and r["variant"] == "w_a=1 tau_a=10ms"]
    assert resp and all(float(r["ms"]) == float(r["step"]) for r in resp)
    assert {r["weights"] for r in rows} == {"seeded 0"}
    for path in E.output_paths("interval", out):
        assert path.exists() and path.stat().st_size > 0
    assert {p.name for p in out.iterdir()} == {p.name for p in E.output_paths("interval", out)}

    before = (out / "interval.csv").read_text()
    assert main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert main(argv + ["--force", "--levels", "2"]) == 0
    assert (out / "interval.csv").read_text() != before


def test_cli_is_reproducible_and_checks_inputs(tmp_path, capsys):
    spec = tmp_path / "leaky.dyn"
    spec.write_text(LEAKY)
    args = ["experiment", "duration", str(spec), "--n-images", "2", "--levels", "1,2", "--seed", "5"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "duration.csv").read_text() == (tmp_path / "b" / "duration.csv").read_text()
    capsys.readouterr()

    image = tmp_path / "one.png"
    from PIL import Image
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)).save(image)
    assert main(["experiment", "noise", str(spec), "--images", str(image), "--out", str(tmp_path / "c")]) == 1
    assert "labelled images" in capsys.readouterr().err
    assert main(["experiment", "contrast", str(spec), "--images", str(image), "--levels", "0.5,1",
                 "--out", str(tmp_path / "c")]) == 0
    assert {r["variant"] for r in read_csv(tmp_path / "c" / "contrast.csv")} == {"default"}
    capsys.readouterr()
    for bad, message in [(["--levels", "0"], "levels must be"), (["--sweep", "tau"], "--sweep needs"),
                         (["--images", str(tmp_path / "nope.png")], "no image at"),
                         (["--checkpoint", str(tmp_path / "nope.pt")], "no checkpoint")]:
        assert main(["experiment", "duration", str(spec), "--out", str(tmp_path / "d")] + bad) == 1
        err = capsys.readouterr().err
        assert err.startswith("dynv: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_cli_noise_with_a_labelled_folder(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    spec = tmp_path / "t.dyn"
    spec.write_text(TEMPLATE)
    out = tmp_path / "out"
    assert main(["experiment", "noise", str(spec), "--images", f"folder:{tmp_path / 'imgs'}", "--levels", "1,100",
                 "--out", str(out)]) == 0
    rows = read_csv(out / "noise.csv")
    acc = [r for r in rows if r["measure"] == "accuracy"]
    assert {r["area"] for r in acc} == {"readout"}
    assert len([r for r in acc if r["step"] == ""]) == 2 and len([r for r in acc if r["step"] != ""]) == 2 * 3
    assert all(float(r["value"]) in (0, 0.25, 0.5, 0.75, 1) for r in acc)  # 4 images
    assert "accuracy by signal-to-noise ratio" in capsys.readouterr().out


def test_cli_checkpoint_strict_and_partial(tmp_path, capsys):
    spec = tmp_path / "rec.dyn"
    spec.write_text(REC)
    trained = with_weights(REC, {"tau": "3 ms"}, image_to_A__conv__weight=0.05, image_to_A__conv__bias=0.01)
    ckpt = tmp_path / "ckpt.pt"
    checkpoint.save(ckpt, checkpoint.Checkpoint(model=trained.state_dict(), params={"tau": "3 ms"}))
    out = tmp_path / "out"
    assert main(["experiment", "duration", str(spec), "--checkpoint", str(ckpt), "--sweep", "rec=false,true",
                 "--n-images", "3", "--levels", "1,3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "variant rec=true" in err and "4 of 6 tensors loaded" in err
    assert "2 keep their seeded initial values (A_to_A.conv.bias, A_to_A.conv.weight)" in err
    rows = read_csv(out / "duration.csv")
    weights = {r["variant"]: r["weights"] for r in rows}
    assert weights == {"rec=false": "checkpoint", "rec=true": "checkpoint partial: 4/6 loaded, 2 seeded, 0 unused"}

    # the strict variant is exactly the trained model (its params, tau = 3 ms, came from the checkpoint)
    x, _ = E.Images("digits", 3, 0).get((1, 8, 8))
    direct = E.run_protocol("duration", {"m": trained}, x, levels=[1, 3])
    got = [float(r["value"]) for r in rows if r["variant"] == "rec=false" and r["measure"] == "summed"]
    np.testing.assert_allclose(got, direct.values("summed")["m"]["A"], rtol=1e-6)

    # a checkpoint with more tensors than the model (no sweep): refused unless partial, then all of
    # the model's load and the rest is unused
    full = dv.compile(REC, {"rec": "true"})
    ckpt2 = tmp_path / "full.pt"
    torch.save(full.state_dict(), ckpt2)  # a bare state dict
    with pytest.raises(checkpoint.CheckpointError, match="2 of the file's are unused .*--partial-weights"):
        E.make_variants(spec, {"rec": "false"}, [], 0, checkpoint.load(ckpt2))
    variants = E.make_variants(spec, {"rec": "false"}, [], 0, checkpoint.load(ckpt2), log=print, partial=True)
    assert variants[0].weights == "checkpoint partial: 4/4 loaded, 0 seeded, 2 unused"
    assert "0 keep their seeded initial values, 2 of the checkpoint's are unused" in capsys.readouterr().out


def test_load_weights_refuses_a_foreign_checkpoint():
    model = conv1(LEAKY)
    for partial in (False, True):
        with pytest.raises(checkpoint.CheckpointError, match="none of the 1 tensors of the checkpoint fits"):
            E.load_weights(model, {"other.weight": torch.zeros(3)}, partial)


def test_shipped_dyrcnn_recurrence_sweep(tmp_path, capsys):
    out = tmp_path / "x4"
    assert main(["experiment", "duration", str(ROOT / "specs" / "dyrcnn_x4.dyn"), "--set", "size=16",
                 "--set", "steps=6", "--n-images", "4", "--sweep", "recurrence=none,self,full,local",
                 "--out", str(out)]) == 0
    rows = read_csv(out / "duration.csv")
    norm = {}
    for r in rows:
        if r["measure"] == "normalised":
            norm.setdefault((r["variant"], r["area"]), []).append(float(r["value"]))
    assert {v for v, _ in norm} == {f"recurrence={k}" for k in ("none", "self", "full", "local")}
    assert {a for _, a in norm} == {"V1", "V2", "V4", "IT"}
    for values in norm.values():
        assert len(values) == 5 and max(values) == 1.0
    assert len({tuple(v) for v in norm.values()}) == len(norm)  # the variants differ
    assert (out / "duration_timecourse.png").exists()


def test_a_nan_in_an_area_stops_the_experiment_naming_area_and_step():
    """V2 = sqrt(V1), V1 = x (x - 0.5), two steps late: blank is 0, a pixel darker than 0.5 is NaN."""
    fragile = """model Fragile
time { dt = 2 ms  steps = 4 }
input image [1, 8, 8]
area V1 [1] { r = input * (input - 0.5) }
area V2 [1] { r = sqrt(input) }
image -> V1 : scale(1.0)
V1 -> V2 : identity, delay 4 ms
readout V2 : avgpool | linear(2)
"""
    model = dv.compile(fragile)
    imgs = torch.full((2, 1, 8, 8), 0.9)
    imgs[1, 0, 3, 3] = 0.1
    with pytest.raises(dv.NonFiniteError) as info:
        E.run_protocol("duration", {"v": model}, imgs, levels=[1], intro=3)
    err = info.value
    assert (err.area, err.step, err.item) == ("V2", 5, 1), str(err)  # onset 3, plus the 2-step delay
    assert str(err).startswith("non-finite values (nan) in area V2 at step 5 (10 ms)")
    E.run_protocol("duration", {"v": model}, imgs[:1], levels=[1], intro=3)  # the bright image alone is fine
