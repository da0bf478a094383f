"""`dynv train`: learning, run files, exact resume, refusals, NaN/inf reports and
DistributedDataParallel over two CPU processes (tiny specs and images, all fast)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from dynvision_dsl import compile as compile_spec
from dynvision_dsl.checkpoint import load as load_checkpoint
from dynvision_dsl.cli import main
from dynvision_dsl.model import NonFiniteError
from dynvision_dsl.science.train import TrainError, train

from conftest import ROOT

# two leaky areas with feedback and a dropout in the readout (drop=0 turns it off);
# V2 is one step late, so the readout is silent at step 0
TINY = """model Tiny
param size = 12
param steps = 4
param classes = 2
param drop = 0.3
time { dt = 2 ms  steps = steps }
input image [1, size, size]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V1 [4] : leaky(tau=4 ms)
area V2 [6] : leaky(tau=4 ms)
image -> V1 : conv(3)
V1 -> V2 : maxpool(2) | conv(3), delay 2 ms
V2 -> V1 : adapt, delay 4 ms
readout V2 : avgpool | dropout(drop) | linear(classes)
"""

# V2 takes the square root of V1 = pixel - offset, two steps (4 ms) late: a pixel
# darker than `offset` makes V2 NaN at step 2; with offset 0 a black pixel keeps the
# forward finite (sqrt 0 = 0) but makes the gradient of V1's scale NaN
FRAGILE = """model Fragile
param steps = 4
param offset = 0.1
time { dt = 2 ms  steps = steps }
input image [1, 12, 12]
area V1 [1] { r = input - offset }
area V2 [1] { r = sqrt(input) }
image -> V1 : scale(1.0)
V1 -> V2 : identity, delay 4 ms
readout V2 : avgpool | linear(2)
"""


def _images(root: Path, n: int = 24, black_spot: bool = False) -> Path:
    """Two classes of 12x12 grey images, dark and light, every pixel >= 0.2 (but
    pixel (0, 0) black with `black_spot`)."""
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = 0.2 + (0.35 + 0.3 * c) * 0.8 * (0.6 + 0.8 * torch.rand(12, 12, generator=g))
            if black_spot:
                img[0, 0] = 0
            Image.fromarray((img.clamp(0, 1) * 255).round().byte().numpy(), "L").save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return _images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.dyn"
    path.write_text(TINY)
    return path


def _quiet(line: str) -> None:
    pass


def test_train_learns_and_writes_the_run(tiny, images, tmp_path, capsys):
    out = tmp_path / "run"
    result = train(tiny, {"drop": "0"}, data=f"folder:{images}", epochs=8, batch=12, lr=0.05, out=out,
                   progress=False)
    rows = result.metrics
    assert [r.epoch for r in rows] == list(range(1, 9)) and result.epochs == 8
    assert rows[-1].train_loss < rows[0].train_loss - 0.2 and rows[-1].test_loss < rows[0].test_loss
    assert result.best_acc == 1.0 and rows[result.best_epoch - 1].test_acc == 1.0
    assert all(r.test_acc_steps[0] is None and len(r.test_acc_steps) == 4 for r in rows)  # silent step 0
    assert rows[-1].test_acc_steps[-1] == rows[-1].test_acc
    stdout = capsys.readouterr().out
    assert stdout.count("held-out loss") == 8 and "epoch 8/8: train loss" in stdout

    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "learning_curve.png", "metrics.csv",
                                                     "run.json"]
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == ("epoch,train_loss,train_acc,activity_loss,test_loss,test_acc,seconds,images_per_s,"
                        "test_acc_step_0,test_acc_step_1,test_acc_step_2,test_acc_step_3")
    assert len(lines) == 9 and lines[1].split(",")[8] == "" and lines[-1].startswith("8,")
    assert all(float(line.split(",")[7]) > 0 for line in lines[1:])  # images/s, data loading included
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "run.json").read_text())
    assert info["params"] == {"drop": "0"} and info["args"]["lr"] == 0.05 and info["epochs_done"] == 8
    assert info["data"]["train"] + info["data"]["test"] == 48 and info["data"]["batches_per_epoch"] == 3
    assert info["best"]["epoch"] == result.best_epoch and info["versions"]["torch"] == torch.__version__

    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    assert last.epoch == 8 and best.epoch == result.best_epoch
    assert last.params == {"drop": "0"} and last.spec == TINY and last.spec_path == str(tiny)
    assert {"optimizer", "rng", "metrics", "args", "best_epoch"} <= set(last.extra)
    # what `dynv experiment` does: compile with the checkpoint's params, load its weights
    model = compile_spec(last.spec, last.params)
    model.load_state_dict(last.model)
    model.eval()
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), result.model(x))


def _tensors_equal(a, b) -> bool:
    """Nested dicts/lists of tensors and numbers, compared exactly."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_continues_bit_for_bit(tiny, images, tmp_path):
    kw = dict(data=f"folder:{images}", batch=8, lr=0.05, seed=3, progress=False, echo=_quiet)
    rng = torch.get_rng_state()
    straight = train(tiny, {"drop": "0.3"}, epochs=2, out=tmp_path / "a", **kw)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left as it was
    train(tiny, {"drop": "0.3"}, epochs=1, out=tmp_path / "b", **kw)
    resumed = train(tiny, {"drop": "0.3"}, epochs=2, out=tmp_path / "b", resume=True, **kw)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a.epoch == b.epoch == 2
    assert _tensors_equal(a.model, b.model)  # dropout draws from the restored RNG, so this needs it
    assert _tensors_equal(a.extra["optimizer"], b.extra["optimizer"])
    assert _tensors_equal(a.extra["rng"], b.extra["rng"])
    timing = ("seconds", "images_per_s")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in a.extra["metrics"]]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in b.extra["metrics"]]
    assert [r.train_loss for r in straight.metrics] == [r.train_loss for r in resumed.metrics]
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "b" / "run.json").read_text())["resumed_at_epochs"] == [1]


def _cli(tiny, images, out, *extra) -> list[str]:
    return ["train", str(tiny), "--data", f"folder:{images}", "--epochs", "1", "--batch", "8", "--lr", "0.01",
            "--out", str(out), "--no-progress", *extra]


def test_cli_refuses_an_existing_run_unless_resume_or_force(tiny, images, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_cli(tiny, images, out)) == 0
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(_cli(tiny, images, out)) == 1
    assert capsys.readouterr().err == (f"dynv: {out} holds a run (1 of 1 epochs done); pass --resume to continue "
                                       f"it or --force to start afresh\n")
    assert (out / "last.pt").read_bytes() == before
    assert main(_cli(tiny, images, out, "--resume", "--force")) == 1
    assert "not both" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert main(_cli(tiny, images, out, "--force", "--seed", "1")) == 0
    assert (out / "last.pt").read_bytes() != before and (out / "notes.txt").read_text() == "mine"
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    assert main(_cli(tiny, images, other)) == 1
    assert "holds no run of dynv train; choose another --out" in capsys.readouterr().err


def test_cli_resume_refuses_changed_settings(tiny, images, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_cli(tiny, images, out, "--resume")) == 1
    assert f"dynv: {out} holds no run to resume" in capsys.readouterr().err
    assert main(_cli(tiny, images, out)) == 0
    capsys.readouterr()
    assert main(_cli(tiny, images, out, "--resume", "--lr", "0.02", "--set", "drop=0.5")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dynv: --resume would change the run in {out}: ")
    assert "--set drop=0.5 (the run used no --set)" in err and "--lr 0.02 (the run used 0.01)" in err
    assert "--force to start afresh" in err
    tiny.write_text(TINY.replace("tau=4 ms", "tau=6 ms"))
    assert main(_cli(tiny, images, out, "--resume")) == 1
    assert "the spec has changed since the run" in capsys.readouterr().err
    tiny.write_text(TINY)
    assert main(_cli(tiny, images, out, "--resume")) == 0
    assert "1 of 1 epochs already done" in capsys.readouterr().out


def test_cli_reports_data_problems(tiny, images, tmp_path, capsys):
    assert main(_cli(tiny, images, tmp_path / "a", "--set", "classes=3")) == 1
    assert capsys.readouterr().err == (f"dynv: the data ({images.name}) has 2 classes but Tiny reads out 3: "
                                       f"pass --set classes=2\n")
    assert main(_cli(tiny, images, tmp_path / "b", "--batch", "64")) == 1
    assert "--batch 64 is more than the 38 training images" in capsys.readouterr().err
    assert main(_cli(tiny, images, tmp_path / "c", "--data", "mnist")) == 1
    assert "unknown data 'mnist'" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abc")


def test_run_names_the_first_non_finite_area_step_and_item():
    model = compile_spec(FRAGILE)
    x = torch.full((3, 1, 12, 12), 0.5)
    x[2, 0, 5, 5] = 0.05  # V1 = -0.05 there; V2 = sqrt(V1) two steps later
    with pytest.raises(NonFiniteError) as info:
        model.run(x)
    err = info.value
    assert str(err) == "non-finite values (nan) in area V2 at step 2 (4 ms), batch item 2"
    assert (err.area, err.step, err.item, err.kind, err.ms) == ("V2", 2, 2, "nan", 4.0)
    assert torch.isnan(model.run(x, check_finite=False).responses["V2"][2, 2:]).any()
    assert torch.isfinite(model.run(x[:2]).logits).all()


def test_training_stops_at_nan_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    spec = tmp_path / "fragile.dyn"
    spec.write_text(FRAGILE)
    data = _images(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", str(spec), "--data", f"folder:{data}", "--batch", "8", "--lr", "0.01", "--out", str(out),
            "--no-progress"]
    assert main(args + ["--epochs", "1"]) == 0
    last, metrics = (out / "last.pt").read_bytes(), (out / "metrics.csv").read_text()
    _images(data, black_spot=True)  # every image now has a pixel below the offset
    capsys.readouterr()
    assert main(args + ["--epochs", "2", "--resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dynv: non-finite values (nan) in area V2 at step 2 (4 ms), training batch 1 of epoch 2 "
                          "(image ")
    assert err.endswith("of the batch): lower --lr, or check V2's dynamics\n")
    assert (out / "last.pt").read_bytes() == last and (out / "metrics.csv").read_text() == metrics


def test_non_finite_gradient_names_the_parameter(tmp_path):
    spec = tmp_path / "fragile.dyn"
    spec.write_text(FRAGILE)
    data = _images(tmp_path / "data", black_spot=True)
    with pytest.raises(NonFiniteError) as info:
        train(spec, {"offset": "0"}, data=f"folder:{data}", epochs=1, batch=8, out=tmp_path / "run",
              progress=False, echo=_quiet)
    assert str(info.value).startswith("non-finite gradient (nan) of parameter image_to_V1.scale.weight at training "
                                      "batch 1 of epoch 1, though the forward pass is finite")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_error_for_a_missing_spec(tmp_path):
    from dynvision_dsl import DynError

    with pytest.raises(DynError, match=r"nope.dyn: error\[E010\]: no such file"):  # as compile(Path) says it
        train(tmp_path / "nope.dyn", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_cpu_processes_matches_one_process(tiny, images, tmp_path):
    kw = dict(spec=str(tiny), params={"drop": "0"}, data=f"folder:{images}", epochs=2, batch=8, lr=0.01, seed=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(ROOT / "tests" / "ddp_worker.py"),
           json.dumps({**kw, "out": str(tmp_path / "ddp"), "weights": str(tmp_path)})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = train(**{**kw, "spec": tiny}, out=tmp_path / "single", progress=False, echo=_quiet)
    ddp_last = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ddp_last.epoch == 2 and json.loads((tmp_path / "ddp" / "run.json").read_text())["world_size"] == 2
    for key, value in single.model.state_dict().items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert torch.equal(ranks[0][key], ddp_last.model[key]), key
        torch.testing.assert_close(ranks[0][key], value, atol=1e-5, rtol=0, msg=key)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        initial = compile_spec(TINY, {"drop": "0"}).state_dict()
    assert not torch.equal(ranks[0]["readout.linear.weight"], initial["readout.linear.weight"])  # it trained
    for a, b in zip(ddp_last.extra["metrics"], single.metrics):
        assert abs(a["train_loss"] - b.train_loss) < 1e-5 and a["test_acc"] == b.test_acc
