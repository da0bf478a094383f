"""DynVision's training regimes on `dynv train`: presentation pattern, reaction time, activity
loss, per-kind learning rates, truncated BPTT, clipping, schedules, optimisers, bf16, device;
each flag's effect, its record in run.json and the checkpoint, exact resume, and refusals."""
import json
import math

import pytest
import torch

from dynvision_dsl import compile as compile_spec
from dynvision_dsl.checkpoint import load as load_checkpoint
from dynvision_dsl.cli import main
from dynvision_dsl.science.train import Regime, TrainError, train
from dynvision_dsl.science.train.groups import param_groups
from dynvision_dsl.science.train.losses import _loss, activity
from dynvision_dsl.science.train.optim import lr_factor, make_optimizer
from dynvision_dsl.science.train.presentation import label_steps, onsets, show, stretch
from dynvision_dsl.science.train.unroll import Unroll, autocast

from conftest import ROOT
from test_train import TINY, _images, _tensors_equal

# V1 with self-recurrence named as if it were feedforward, V2 feeding back to V1, a trainable tau
LOOPS = """model Loops
param steps = 8
time { dt = 2 ms  steps = steps }
input image [1, 12, 12]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V1 [4] : leaky(tau=4 ms)
area V2 [6] : leaky(tau=4 ms)
image -> V1 : conv(3) as V1.conv
V1 -> V1 : conv(3) as feedforward_conv, delay 2 ms
V1 -> V2 : maxpool(2) | conv(3) as V2.conv, delay 2 ms
V2 -> V1 : adapt as fb, delay 4 ms
readout V2 : avgpool | linear(2) as head
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.dyn"
    path.write_text(TINY)
    return path


def _quiet(line: str) -> None:
    pass


# ------------------------------------------------------------------ --pattern, --reaction-time
def test_pattern_is_stretched_by_nearest_index_and_blank_frames_are_zero():
    assert stretch("1011", 8).int().tolist() == [1, 1, 0, 0, 1, 1, 1, 1]
    assert stretch("10", 5).int().tolist() == [1, 1, 1, 0, 0]  # floor(t * 2 / 5), as F.interpolate(nearest)
    assert stretch("1", 3).all() and onsets(stretch("0101", 4)).int().tolist() == [0, 1, 0, 1]
    x = torch.rand(2, 1, 3, 3) + 0.1
    frames = show(x, stretch("1011", 8))
    assert frames.shape == (2, 8, 1, 3, 3)
    assert (frames[:, 2:4] == 0).all() and torch.equal(frames[:, 5], x)
    assert show(x, stretch("1", 8)) is x  # always shown: the static image, no copy


def test_reaction_time_masks_the_steps_after_each_onset_and_the_blanks():
    shown = stretch("1011", 8)  # 11001111, onsets at 0 and 4
    assert label_steps(shown, 2.0, 0.0, 0).int().tolist() == [1, 1, 0, 0, 1, 1, 1, 1]
    assert label_steps(shown, 2.0, 4.0, 0).int().tolist() == [0, 0, 0, 0, 0, 0, 1, 1]  # 0 and 2 ms after an onset
    assert label_steps(shown, 2.0, 2.0, 1).int().tolist() == [0, 1, 0, 0, 0, 1, 1, 1]  # the readout from step 1
    assert label_steps(stretch("1", 6), 2.0, 8.0, 0).int().tolist() == [0, 0, 0, 0, 1, 1]


def test_masked_steps_carry_no_loss():
    steps = label_steps(stretch("1011", 8), 2.0, 4.0, 0)
    labels = torch.tensor([0, 2, 1])
    logits = torch.randn(3, 8, 4, requires_grad=True)
    loss = _loss(logits, labels, steps)
    loss.backward()
    assert (logits.grad[:, ~steps] == 0).all() and (logits.grad[:, steps] != 0).any()
    other = logits.detach().clone()
    other[:, ~steps] = 100 * torch.randn_like(other[:, ~steps])
    assert torch.equal(_loss(other, labels, steps), loss.detach())
    other[:, 7, 0] += 1.0
    assert not torch.equal(_loss(other, labels, steps), loss.detach())


# ------------------------------------------------------------------ --activity-loss
def test_activity_is_the_mean_absolute_output_of_the_present_steps():
    responses = {"A": [None, torch.full((1, 2), -2.0)], "B": [torch.full((1, 3), 1.0), torch.zeros(1, 3)]}
    assert float(activity(responses)) == pytest.approx((2 + 1 + 0) / 3)
    model = compile_spec(TINY, {"drop": "0"})
    unroll = Unroll(model, stretch("1", 4), record_activity=True)
    _, penalty = unroll(torch.rand(2, 1, 12, 12))
    penalty.backward()
    assert float(penalty.detach()) > 0 and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert float(Unroll(model, stretch("1", 4))(torch.rand(2, 1, 12, 12))[1]) == 0.0


# ------------------------------------------------------------------ --lr-scale
def _kinds(model, scales=None):
    groups = param_groups(model, model.graph, 1e-3, scales or {})
    return {g["kind"]: sorted(g["names"]) for g in groups}, groups


def test_parameter_groups_come_from_the_graph_not_from_names():
    model = compile_spec(LOOPS, {})
    kinds, groups = _kinds(model, {"recurrence": 0.2, "feedback": 0.5})
    assert kinds == {"recurrence": ["feedforward_conv.bias", "feedforward_conv.weight"],  # a self-loop, whatever its name
                     "feedback": ["fb.conv.bias", "fb.conv.weight"],
                     "feedforward": ["V1.conv.bias", "V1.conv.weight", "V2.conv.bias", "V2.conv.weight"],
                     "readout": ["head.bias", "head.weight"]}
    assert {g["kind"]: g["lr"] for g in groups} == pytest.approx(
        {"recurrence": 2e-4, "feedback": 5e-4, "feedforward": 1e-3, "readout": 1e-3})
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters()) and len(set(names)) == len(names)


@pytest.mark.parametrize("spec", ["dyrcnn_x4", "cornet_rt", "cordsnet"])
def test_every_zoo_parameter_is_in_exactly_one_group(spec):
    model = compile_spec((ROOT / "specs" / f"{spec}.dyn").read_text(), {"size": 32, "steps": 4})
    kinds, groups = _kinds(model)
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert len(set(names)) == len(names)
    if spec == "dyrcnn_x4":
        assert kinds["recurrence"] == sorted(f"{a}.recurrence.conv.{w}" for a in ("V1", "V2", "V4", "IT")
                                             for w in ("weight", "bias"))
        assert kinds["readout"] == ["classifier.2.bias", "classifier.2.weight"]
        assert "addskip_V4.conv.weight" in kinds["feedforward"]  # a skip goes forward
    if spec == "cordsnet":
        assert "addbias_layer1.bias" in kinds["area"]  # the areas' own parameters


def test_optimizers_and_weight_decay():
    model = compile_spec(LOOPS, {})
    adam = make_optimizer(model, model.graph, 0.01, Regime())
    assert type(adam) is torch.optim.Adam and len(adam.param_groups) == 1 and adam.param_groups[0]["weight_decay"] == 0
    adamw = make_optimizer(model, model.graph, 0.01, Regime(optimizer="adamw", lr_scale={"readout": 0.1}))
    assert type(adamw) is torch.optim.AdamW and {g["weight_decay"] for g in adamw.param_groups} == {0.01}
    assert [g["lr"] for g in adamw.param_groups if g["kind"] == "readout"] == [pytest.approx(0.001)]
    sgd = make_optimizer(model, model.graph, 0.01, Regime(optimizer="sgd", weight_decay=1e-4))
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0.9
    assert sgd.param_groups[0]["weight_decay"] == 1e-4


# ------------------------------------------------------------------ --schedule, --warmup
def test_schedules_and_warmup():
    r = Regime(schedule="cosine", warmup=4)
    assert [lr_factor(s, 104, r) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(54, 104, r) == pytest.approx(0.5) and lr_factor(103, 104, r) < 0.001
    step = Regime(schedule="step")
    assert [lr_factor(s, 100, step) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert {lr_factor(s, 100, Regime()) for s in range(100)} == {1.0}


# ------------------------------------------------------------------ --tbptt
def _input_gradient(model, steps: int, tbptt: int) -> list[bool]:
    x = torch.rand(2, steps, 1, 12, 12, requires_grad=True)
    logits, _ = Unroll(model, stretch("1", steps), tbptt=tbptt)(x)
    logits[:, -1].sum().backward()
    return [bool(x.grad[:, t].abs().sum() > 0) for t in range(steps)]


def test_tbptt_cuts_the_graph_every_k_steps():
    model = compile_spec(LOOPS, {})  # the readout at step 7 reads V2, which reads V1 one step late
    full = _input_gradient(model, 8, 0)
    assert full == [True] * 7 + [False]  # through the leak, the recurrence and the feedback
    assert _input_gradient(model, 8, 3) == [False] * 6 + [True, False]  # cut before steps 3 and 6
    assert _input_gradient(model, 8, 4) == [False] * 4 + [True] * 3 + [False]  # cut before step 4
    assert _input_gradient(model, 8, 100) == full


# ------------------------------------------------------------------ --precision
def test_bf16_runs_convolutions_in_bf16_and_keeps_states_fp32():
    model = compile_spec(LOOPS, {})
    raw = []
    model.V1.conv.register_forward_hook(lambda m, i, o: raw.append(o.dtype))  # runs before Unroll's fp32 cast
    x = torch.rand(2, 1, 12, 12)
    reference = Unroll(model, stretch("1", 8))(x)[0]
    raw.clear()
    logits, penalty = Unroll(model, stretch("1", 8), precision="bf16", record_activity=True)(x)
    assert set(raw) == {torch.bfloat16} and logits.dtype == torch.float32
    with autocast(model, "bf16", "cpu"):
        _, responses = model.simulate(x, record=model.areas)
    assert {v.dtype for seq in responses.values() for v in seq if v is not None} == {torch.float32}  # the states
    assert torch.allclose(logits, reference, atol=0.05) and not torch.equal(logits, reference)
    assert len(model.V1.conv._forward_hooks) == 1  # the fp32 casts exist only inside forward


# ------------------------------------------------------------------ a run with every flag, resumed
FLAGS = ["--pattern", "1011", "--reaction-time", "2ms", "--activity-loss", "0.5", "--lr-scale", "recurrence=0.2",
         "--lr-scale", "feedback=0.5", "--tbptt", "3", "--clip", "5", "--schedule", "cosine", "--warmup", "2",
         "--optimizer", "adamw", "--weight-decay", "0.001", "--precision", "bf16", "--device", "cpu"]


def _argv(tiny, images, out, epochs, *extra):
    return ["train", str(tiny), "--set", "drop=0", "--data", f"folder:{images}", "--epochs", str(epochs),
            "--batch", "8", "--lr", "0.01", "--out", str(out), "--no-progress", *FLAGS, *extra]


def test_every_flag_is_recorded_and_resume_restores_optimizer_and_schedule(tiny, images, tmp_path, capsys,
                                                                           monkeypatch):
    import dynvision_dsl.science.train.loop as loop

    assert main(_argv(tiny, images, tmp_path / "a", 2)) == 0
    real = loop._Run.train_epoch

    def interrupted(self, epoch):  # Ctrl-C in epoch 2: last.pt holds epoch 1 of the 2 planned
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(loop._Run, "train_epoch", interrupted)
    assert main(_argv(tiny, images, tmp_path / "b", 2)) == 130
    monkeypatch.setattr(loop._Run, "train_epoch", real)
    capsys.readouterr()
    assert main(_argv(tiny, images, tmp_path / "b", 2, "--resume")) == 0
    said = capsys.readouterr().out
    assert ("1 x cpu; --pattern 1011 --reaction-time 2ms --activity-loss 0.5 --lr-scale feedback=0.5 --lr-scale "
            "recurrence=0.2 --tbptt 3 --clip 5.0 --schedule cosine --warmup 2 --optimizer adamw --weight-decay 0.001 "
            "--precision bf16 --device cpu\n") in said
    assert "note: --lr-scale recurrence= has no effect: Tiny has no trainable recurrence parameters" in said
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert _tensors_equal(a.model, b.model) and _tensors_equal(a.extra["optimizer"], b.extra["optimizer"])
    assert a.extra["schedule"] == b.extra["schedule"] and a.extra["schedule"]["last_epoch"] == 2 * 4  # 4 batches
    expected = {"pattern": "1011", "reaction_ms": 2.0, "activity_loss": 0.5,
                "lr_scale": {"feedback": 0.5, "recurrence": 0.2}, "tbptt": 3, "clip": 5.0, "schedule": "cosine",
                "warmup": 2, "optimizer": "adamw", "weight_decay": 0.001, "precision": "bf16", "device": "cpu"}
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert {k: info["args"][k] for k in expected} == expected
    assert {k: a.extra["args"][k] for k in expected} == expected
    assert info["param_groups"] == {"feedback": {"lr": 0.005, "parameters": 2},
                                    "feedforward": {"lr": 0.01, "parameters": 4},
                                    "readout": {"lr": 0.01, "parameters": 2}}
    assert info["model_info"]["labelled_steps"] == [3]  # 1011 over 4 steps: step 2 is an onset, 1 is blank
    groups = {g["kind"]: g["initial_lr"] for g in a.extra["optimizer"]["param_groups"]}
    assert groups == pytest.approx({"feedback": 0.005, "feedforward": 0.01, "readout": 0.01})  # TINY has no loop
    header, *rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    column = header.split(",").index("activity_loss")
    assert all(float(r.split(",")[column]) > 0 for r in rows) and len(rows) == 2
    capsys.readouterr()
    assert main(_argv(tiny, images, tmp_path / "b", 3, "--resume", "--pattern", "1")) == 1
    assert capsys.readouterr().err == (f"dynv: --resume would change the run in {tmp_path / 'b'}: --pattern 1 (the "
                                       f"run used 1011). Resume with the run's settings, or pass --force to start "
                                       f"afresh\n")


def test_clip_bounds_the_update(tiny, images, tmp_path):
    kw = dict(data=f"folder:{images}", epochs=1, batch=32, lr=0.1, progress=False, echo=_quiet)
    torch.manual_seed(0)
    start = compile_spec(TINY, {"drop": "0"}).state_dict()
    clipped = train(tiny, {"drop": "0"}, out=tmp_path / "c", regime=Regime(optimizer="sgd", clip=1e-4), **kw)
    free = train(tiny, {"drop": "0"}, out=tmp_path / "f", regime=Regime(optimizer="sgd"), **kw)

    def moved(result):  # the norm of all the parameters' change; one SGD step (38 images, batch 32)
        after = result.model.state_dict()
        return math.sqrt(sum(float((after[k] - start[k]).pow(2).sum()) for k in start))

    assert moved(clipped) <= 0.1 * 1e-4 * 1.001 and moved(free) > 10 * moved(clipped)


# ------------------------------------------------------------------ --device, bad values
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_device_cuda_without_cuda_is_a_clear_error(tiny, images, tmp_path, capsys):
    assert main(_argv(tiny, images, tmp_path / "r", 1)[:-len(FLAGS)] + ["--device", "cuda"]) == 2  # as run's
    err = capsys.readouterr().err
    assert err.startswith("dynv: --device cuda: CUDA is not available") and "Traceback" not in err
    assert err.strip().endswith("pass --device cpu (or --device auto)") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, message", [
    (["--pattern", "10a1"], "--pattern takes 0s and 1s with at least one 1 (1 shows the image, 0 a blank frame), "
                            "got '10a1'"),
    (["--pattern", "000"], "--pattern takes 0s and 1s with at least one 1"),
    (["--reaction-time", "8 parsecs"], "--reaction-time takes a duration such as 8ms or 0.008s, got '8 parsecs'"),
    (["--activity-loss", "-1"], "--activity-loss must be a weight of 0 or more, got -1.0"),
    (["--lr-scale", "recurence=0.2"], "--lr-scale: unknown connection kind 'recurence' (did you mean 'recurrence'?); "
                                      "choose one of recurrence, feedback, feedforward, readout, area"),
    (["--lr-scale", "feedback"], "--lr-scale takes KIND=FACTOR such as recurrence=0.2, got 'feedback'"),
    (["--lr-scale", "feedback=-2"], "--lr-scale feedback= takes a factor of 0 or more, got -2.0"),
    (["--tbptt", "-1"], "--tbptt must be a whole number of steps"),
    (["--clip", "0"], "--clip must be a positive gradient norm, got 0.0"),
    (["--schedule", "cosin"], "--schedule: unknown value 'cosin' (did you mean 'cosine'?)"),
    (["--warmup", "-3"], "--warmup must be a whole number of optimiser steps, 0 or more, got -3"),
    (["--optimizer", "adamx"], "--optimizer: unknown value 'adamx'"),
    (["--weight-decay", "-1"], "--weight-decay must be 0 or more, got -1.0"),
    (["--precision", "fp16"], "--precision: unknown value 'fp16' (did you mean 'bf16'?); choose one of 32, bf16"),
    (["--recompute", "-1"], "--recompute must be a whole number of steps per checkpointed segment, at least 1, "
                            "or auto (balanced segments; 0: off), got -1\n"),
    (["--recompute", "atuo"], "--recompute must be a whole number of steps per checkpointed segment, at least 1, "
                              "or auto (balanced segments; 0: off), got 'atuo'\n"),
    (["--reaction-time", "20ms"], "no step carries a label: with --pattern 1 over 4 steps of 2 ms, --reaction-time "
                                  "20 ms and the readout present from step 1; shorten --reaction-time"),
])
def test_bad_values_are_one_line_errors(tiny, images, tmp_path, capsys, flags, message):
    argv = ["train", str(tiny), "--data", f"folder:{images}", "--epochs", "1", "--out", str(tmp_path / "r"),
            "--no-progress", *flags]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("dynv: " + message) and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_the_api_takes_a_reaction_time_as_text_and_refuses_bad_regimes():
    assert Regime(reaction_ms="8ms").reaction_ms == 8.0 and Regime(reaction_ms="0.01 s").reaction_ms == 10.0
    assert Regime(precision=32).precision == "32"
    with pytest.raises(TrainError, match="--tbptt must be a whole number"):
        Regime(tbptt=2.5)
    with pytest.raises(TrainError, match="--precision: unknown value '16'"):
        Regime(precision="16")


def test_the_science_layer_imports_no_cli():
    import subprocess
    import sys

    code = "import sys, dynvision_dsl.science.train; print(sorted(m for m in sys.modules if m.startswith('dynvision_dsl.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
