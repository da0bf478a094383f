"""The protocols added to `dynv experiment` (response, stability, null, idle, ffonly, confusion):
each against a closed form or the effect it exists to show, and every protocol through the CLI."""
import csv
import json

import numpy as np
import pytest
import torch

import dynvision_dsl as dv
from dynvision_dsl.cli import main
from dynvision_dsl.science import experiment as E


pytestmark = pytest.mark.usefixtures("one_thread")


LEAKY = """model Leaky
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param tau = 2 ms
area A [1] { tau * dr/dt = -r + input }
image -> A : conv(1)
readout A : avgpool | linear(2)
"""

CHAIN = """model Chain
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
area A [1] { r = input }
area B [1] { r = input }
image -> A : conv(1)
A -> B : conv(1), delay 2 ms
readout B : avgpool | linear(2)
"""

GROW = """model Grow
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param g = 0
area A [1] { 1 ms * dr/dt = -r + input + g * r }
image -> A : conv(1)
readout A : avgpool | linear(2)
"""

REC = """model Rec
time { dt = 1 ms  steps = 4 }
input image [1, 8, 8]
param tau = 2 ms
param d = 1 ms
area A [2] {
  tau * dr/dt = -r + input
  r = relu(r)
}
area B [2] { tau * dr/dt = -r + input }
image -> A : conv(3)
A -> A : conv(3), delay d
A -> B : conv(1)
B -> A : conv(1), delay 3 ms
readout B : avgpool | linear(3)
"""


def model(source, params=None, **tensors):
    """Compile with seed 0, then set named tensors (a float fills the tensor)."""
    torch.manual_seed(0)
    m = dv.compile(source, {k: str(v) for k, v in (params or {}).items()})
    sd = m.state_dict()
    for key, value in tensors.items():
        sd[key].copy_(torch.as_tensor(value, dtype=sd[key].dtype).expand_as(sd[key]))
    m.load_state_dict(sd)
    return m


def conv1(source, w=1.0, b=0.0, params=None):
    name = next(n for n, _ in dv.compile(source, {k: str(v) for k, v in (params or {}).items()}).named_parameters()
                if n.endswith("conv.weight"))
    return model(source, params, **{name: w, name.replace("weight", "bias"): b})


def images(n=3, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ response
def test_response_latency_adds_the_feedforward_delay_and_the_windows_are_recorded():
    m = model(CHAIN, **{"image_to_A.conv.weight": 1.0, "image_to_A.conv.bias": 0.0, "A_to_B.conv.weight": 1.0,
                        "A_to_B.conv.bias": 0.0})
    res = E.run_protocol("response", {"chain": m}, images(), levels=[3], intro=5)
    assert res.values("latency")["chain"]["A"][0] == 0
    assert res.values("latency")["chain"]["B"][0] == 2  # the 2 ms delay at dt = 1 ms
    assert res.values("latency_ms")["chain"]["B"][0] == 2.0
    assert res.values("peak")["chain"]["A"][0] == pytest.approx(images().mean().item(), rel=1e-6)
    assert res.windows == {3: [(5, 8)]}
    assert res.models["chain"].present["B"][:3] == (False, False, True)


def test_response_of_a_leak_peaks_at_the_end_of_the_presentation():
    res = E.run_protocol("response", {"l": conv1(LEAKY, 1.0)}, images(), levels=[4], intro=3)
    assert res.values("peak_ms")["l"]["A"][0] == 3.0  # onset at 3, the last shown frame at 6: 3 steps later
    assert not res.pinned  # the peak is inside the run, so nothing is flagged


# ----------------------------------------------------------------- stability
def test_stability_growth_is_one_for_a_stable_area_and_huge_for_an_unstable_one():
    x = images()
    stable = E.run_protocol("stability", {"g=0": conv1(GROW, 1.0, params={"g": 0})}, x, levels=[10])
    assert stable.values("growth")["g=0"]["A"][0] == pytest.approx(1.0)
    grow = E.run_protocol("stability", {"g=1.5": conv1(GROW, 1.0, params={"g": 1.5})}, x, levels=[3, 10])
    growth = grow.values("growth")["g=1.5"]["A"]
    assert growth[1] > 1e5 and growth[1] > growth[0] > 10  # longer runs grow further
    assert len(grow.timecourse("g=1.5", "A", 10)) == 40  # 10 x steps


def test_stability_refuses_a_run_no_longer_than_the_trained_window():
    with pytest.raises(E.ExperimentError, match="stability levels must be >= 2"):
        E.run_protocol("stability", {"a": conv1(LEAKY)}, images(), levels=[1])


# ---------------------------------------------------------------------- null
def test_null_without_biases_is_silent_and_with_a_bias_follows_the_leak():
    zero = E.run_protocol("null", {"z": conv1(LEAKY, 1.0, 0.0)}, images(), intro=0)
    assert zero.values("mean")["z"]["A"][0] == 0 and zero.values("final")["z"]["A"][0] == 0
    assert np.all(zero.timecourse("z", "A", 0.0) == 0)
    biased = E.run_protocol("null", {"b": conv1(LEAKY, 1.0, 0.3)}, images(), intro=0)
    T = 20  # max(20, steps)
    assert biased.values("final")["b"]["A"][0] == pytest.approx(0.3 * (1 - 0.5 ** T), rel=1e-5)
    grey = E.run_protocol("null", {"g": conv1(LEAKY, 2.0, 0.0)}, images(), levels=[0.5], intro=0)
    assert grey.values("final")["g"]["A"][0] == pytest.approx(1.0 * (1 - 0.5 ** T), rel=1e-5)


# ---------------------------------------------------------------------- idle
def test_idle_warm_up_matters_only_when_the_blank_screen_drives_the_model():
    levels = [0, 2, 8]
    flat = E.run_protocol("idle", {"a": conv1(LEAKY, 1.0, 0.0)}, images(), levels=levels).values("final")["a"]["A"]
    assert np.allclose(flat, flat[0])
    biased = E.run_protocol("idle", {"a": conv1(LEAKY, 1.0, 0.5)}, images(), levels=levels).values("final")["a"]["A"]
    assert biased[0] < biased[1] < biased[2]
    mean, q, b, n = images().mean().item(), 0.5, 0.5, 4
    for k, value in zip(levels, biased):  # r at onset b (1 - q^k), then n steps toward mean + b
        start = b * (1 - q ** k)
        assert value == pytest.approx(mean + b - (mean + b - start) * q ** n, rel=1e-5)


def test_idle_records_accuracy_with_labels():
    res = E.run_protocol("idle", {"a": conv1(LEAKY)}, images(4), labels=torch.tensor([0, 1, 0, 1]), levels=[0, 3])
    acc = res.values("accuracy")["a"]["readout"]
    assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 1))


# -------------------------------------------------------------------- ffonly
def test_ffonly_differs_from_full_only_after_the_recurrent_delay():
    m = model(REC, {"d": "2 ms"})
    before = {k: v.clone() for k, v in m.state_dict().items()}
    res = E.run_protocol("ffonly", {"default": m}, images(), levels=[6], intro=0)
    assert res.variants == ["full", "ffonly"]
    div = res.values("divergence")["ffonly"]
    assert div["A"][0] == 2  # A's own recurrence, 2 ms later (feedback from B takes 3)
    assert div["B"][0] == 2  # B reads A at the same step
    full, ff = res.timecourse("full", "A", 6), res.timecourse("ffonly", "A", 6)
    assert np.array_equal(full[:2], ff[:2]) and not np.allclose(full[2:], ff[2:])
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # weights restored


def test_ffonly_labels_each_sweep_variant_and_keeps_feedforward_weights():
    kinds = E.parameter_kinds(model(REC))
    assert kinds["image_to_A.conv.weight"] == kinds["A_to_B.conv.bias"] == "feedforward"
    assert kinds["A_to_A.conv.weight"] == "lateral" and kinds["B_to_A.conv.bias"] == "feedback"
    assert sorted(set(kinds.values())) == ["feedback", "feedforward", "lateral", "readout"]
    res = E.run_protocol("ffonly", {"d=1 ms": model(REC), "d=3 ms": model(REC, {"d": "3 ms"})}, images(),
                         levels=[4], intro=0)
    assert res.variants == ["d=1 ms full", "d=1 ms ffonly", "d=3 ms full", "d=3 ms ffonly"]
    assert res.values("divergence")["d=3 ms ffonly"]["A"][0] == 3


def test_silenced_zeroes_exactly_the_lateral_and_feedback_terms():
    m = model(REC)
    with E.silenced(m) as names:
        zeroed = {n for n, p in m.named_parameters() if not p.detach().any()}
    assert set(names) == zeroed and names
    assert all(E.parameter_kinds(m)[n] in ("lateral", "feedback") for n in names)


# ----------------------------------------------------------------- confusion
def test_confusion_rows_sum_to_one_and_match_the_accuracy():
    from dynvision_dsl.science.plot.confusion import confusion_matrix

    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    res = E.run_protocol("confusion", {"m": model(REC)}, images(6), labels=labels)
    assert res.levels == [0, 1, 2]
    cm = confusion_matrix(res, "m")
    assert cm.shape == (3, 3) and np.allclose(cm.sum(1), 1)
    assert np.allclose(np.diag(cm), res.values("accuracy")["m"]["readout"])
    assert res.scalar("accuracy", "m", "readout") == pytest.approx(np.diag(cm).mean())


def test_confusion_needs_labels_and_takes_no_levels():
    with pytest.raises(E.ExperimentError, match="needs labelled images"):
        E.run_protocol("confusion", {"m": model(REC)}, images())
    with pytest.raises(E.ExperimentError, match="takes no levels"):
        E.run_protocol("confusion", {"m": model(REC)}, images(), labels=torch.tensor([0, 1, 2]), levels=[1])


# ----------------------------------------------------------------- the table
def test_the_cli_lists_the_one_protocol_table():
    from dynvision_dsl.cli import parser

    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    choices = next(a for a in sub.choices["experiment"]._actions if a.dest == "name").choices
    assert tuple(choices) == tuple(E.PROTOCOLS)


def test_the_science_layer_imports_no_cli():
    import ast
    from pathlib import Path

    def cli(module: str) -> bool:
        return module.split(".")[0] == "cli" or module.startswith("dynvision_dsl.cli")

    root = Path(E.__file__).parents[1]
    for path in root.rglob("*.py"):  # imports only: a sweep runs `python -m dynvision_dsl.cli` as a subprocess
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                modules = [base.lstrip(".")] + [f"{base}.{a.name}".lstrip(".") for a in node.names]
                modules = modules if node.level or base.startswith("dynvision_dsl") else [base]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            assert not any(cli(m) for m in modules), (path, modules)


def _folder(tmp_path, classes=3, per=2):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (tmp_path / "imgs" / str(c)).mkdir(parents=True)
        for i in range(per):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / str(c) / f"{i}.png")
    return f"folder:{tmp_path / 'imgs'}"


LEVELS = {"duration": "1,2", "contrast": "0.5,1", "interval": "1,2", "noise": "1,4", "response": "2",
          "stability": "2", "null": "0,0.5", "idle": "0,2", "ffonly": "2", "confusion": None}


@pytest.mark.parametrize("name", list(E.PROTOCOLS))
def test_every_protocol_runs_from_the_cli_and_writes_its_files(name, tmp_path, capsys):
    spec = tmp_path / "rec.dyn"
    spec.write_text(REC)
    out = tmp_path / "out"
    argv = ["experiment", name, str(spec), "--images", _folder(tmp_path), "--n-images", "6", "--intro", "2",
            "--out", str(out)] + (["--levels", LEVELS[name]] if LEVELS[name] else [])
    assert main(argv) == 0, capsys.readouterr().err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in E.output_paths(name, out))
    with open(out / f"{name}.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == list(E.COLUMNS) and {r["protocol"] for r in rows} == {name}
    assert json.loads((out / f"{name}.json").read_text())["protocol"] == name


def test_confusion_from_the_cli_refuses_levels(tmp_path, capsys):
    spec = tmp_path / "rec.dyn"
    spec.write_text(REC)
    assert main(["experiment", "confusion", str(spec), "--images", _folder(tmp_path), "--levels", "1",
                 "--out", str(tmp_path / "o")]) == 1
    assert "confusion takes no --levels" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_ffonly_refuses_a_recurrent_connection_without_weights():
    weightless = LEAKY.replace("image -> A : conv(1)\n", "image -> A : conv(1)\nA -> A : identity, delay 1 ms\n")
    with pytest.raises(E.ExperimentError, match="cannot silence the lateral connection A -> A: it has no weights"):
        E.run_protocol("ffonly", {"a": model(weightless)}, images(), levels=[2])


def test_stability_flags_growth_still_rising_at_the_end_of_the_run():
    grow = E.run_protocol("stability", {"g": conv1(GROW, 1.0, params={"g": 1.5})}, images(), levels=[2])
    assert ("g", "A", 2, "growth") in grow.pinned
    steady = E.run_protocol("stability", {"s": conv1(GROW, 1.0, params={"g": 0})}, images(), levels=[2])
    assert not steady.pinned  # constant from the first step: the maximum is not at the end


def test_interval_flags_a_second_peak_cut_off_by_the_end_of_the_run():
    grow = E.run_protocol("interval", {"g": conv1(GROW, 1.0, params={"g": 1.05})}, images(), levels=[16], intro=0,
                          on=1)
    assert {("g", "A", 16, "peak2"), ("g", "A", 16, "ratio")} <= grow.pinned
    leak = E.run_protocol("interval", {"l": conv1(LEAKY)}, images(), levels=[16], intro=0, on=1)
    assert not leak.pinned  # the second response decays inside its window
