"""What the user gives `dynv` and the API: checkpoints, images, `--set`/params values,
subcommand names. Every bad input is one `dynv: ...` line (or a `--set ...`-located
diagnostic) and exit 1, never a traceback; a derandomized fuzz mutates `--set`
values and checkpoint bytes and asserts exactly that."""
import csv
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import dynvision_dsl as dd
from dynvision_dsl import checkpoint
from dynvision_dsl.cli import main, version
from dynvision_dsl.model import NonFiniteError
from dynvision_dsl.stimuli import ImageError, builtin_image, load_image
from dynvision_dsl.science.train import train

from conftest import ROOT, SPECS

# two areas with feedback; `classes` changes the readout's shape (a sweep that changes shapes)
TINY = """model Tiny
param size = 12      # input height = width
param steps = 4
param classes = 2
param tau = 4 ms     # the areas' time constant
param kind = "full"  # full or none
time { dt = 2 ms  steps = steps }
input image [1, size, size]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V1 [4] : leaky(tau=tau)
area V2 [6] : leaky(tau=tau)
image -> V1 : conv(3)
V1 -> V2 : maxpool(2) | conv(3), delay 2 ms
V2 -> V1 : adapt, delay 4 ms
if kind == "full" {
  V1 -> V1 : lateral(kind, 3), delay 2 ms
}
readout V2 : avgpool | linear(classes)
"""
OTHER = TINY.replace("model Tiny", "model Other").replace("area V1 [4]", "area V1 [5]")


def _png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (only one row of data follows: nothing to decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Specs, images, a trained run and every kind of bad file, made once."""
    root = tmp_path_factory.mktemp("inputs")
    f = {"spec": root / "tiny.dyn", "other": root / "other.dyn", "imgs": root / "imgs"}
    f["spec"].write_text(TINY)
    f["other"].write_text(OTHER)
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["dark", "light"]):
        (f["imgs"] / name).mkdir(parents=True)
        for i in range(8):
            img = 0.2 + 0.3 * c + 0.2 * torch.rand(12, 12, generator=g)
            Image.fromarray((img * 255).round().byte().numpy(), "L").save(f["imgs"] / name / f"{i}.png")
    f["image"] = f["imgs"] / "dark" / "0.png"
    train(f["spec"], data=f"folder:{f['imgs']}", epochs=1, batch=4, out=root / "run", progress=False,
          echo=lambda line: None)
    f["best"], f["last"] = root / "run" / "best.pt", root / "run" / "last.pt"
    f["foreign_ckpt"] = root / "otherrun" / "best.pt"  # another spec's checkpoint, as dynv train writes it
    f["foreign_ckpt"].parent.mkdir()
    checkpoint.save(f["foreign_ckpt"], checkpoint.Checkpoint(dd.compile(OTHER).state_dict(), {}, OTHER, "other.dyn", 1))
    f["plain"] = root / "plain.pt"
    torch.save(dd.compile(TINY).state_dict(), f["plain"])
    good = f["best"].read_bytes()
    for name, data in {"empty.pt": b"", "trunc.pt": good[:len(good) // 2], "text.pt": b"not weights\n",
                       "empty.png": b"", "text.png": b"not an image\n",
                       "corrupt.png": f["image"].read_bytes()[:40]}.items():
        (root / name).write_bytes(data)
        f[name] = root / name
    with zipfile.ZipFile(root / "foreign.zip", "w") as z:
        z.writestr("a.txt", "x")
    f["foreign.zip"] = root / "foreign.zip"
    for name, obj in {"tensor.pt": torch.zeros(3), "unrelated.pt": {"foo.weight": torch.zeros(3)},
                      "pickle.pt": {"model": Path("x")}}.items():
        torch.save(obj, root / name)
        f[name] = root / name
    f["bomb.png"], f["big.png"] = _png(root / "bomb.png", 20000, 20000), _png(root / "big.png", 10000, 10000)
    nan = np.full((12, 12), 0.5, np.float32)
    nan[3, 4] = np.nan
    Image.fromarray(nan, "F").save(root / "nan.tif")
    np.save(root / "nan.npy", nan)
    torch.save(torch.from_numpy(nan), root / "nan.pt")
    f.update({"nan.tif": root / "nan.tif", "nan.npy": root / "nan.npy", "nan.pt": root / "nan.pt", "root": root})
    return f


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of `dynv ARGV` in-process; a traceback would raise here."""
    code, err, _ = _run_out(argv, capsys)
    return code, err


def _run_out(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return code, out.err, out.out


# ----------------------------------------------------------------- checkpoints
BAD_WEIGHTS = [  # (file key, what the one line says)
    ("missing", r"no checkpoint at .*nope\.pt"),
    ("empty.pt", r"empty\.pt is empty \(0 bytes\), not a checkpoint"),
    ("trunc.pt", r"trunc\.pt is truncated or damaged \(a zip archive that cannot be read\)"),
    ("text.pt", r"text\.pt is a text file, not a checkpoint"),
    ("foreign.zip", r"foreign\.zip is a zip archive but not one torch\.save wrote"),
    ("tensor.pt", r"tensor\.pt holds a Tensor, not a state dict"),
    ("unrelated.pt", r"none of the 1 tensors of .*unrelated\.pt fits Tiny .*is it for this spec\?"),
    ("pickle.pt", r"pickle\.pt holds pickled Python objects besides tensors \(pathlib\.\w*Path\), which are not "
                  r"loaded because unpickling them can run code; if you trust the file, re-save"),
    ("foreign_ckpt", r"otherrun/best\.pt does not fit Tiny: 7 tensors differ in shape \(image_to_V1\.conv\.weight: "
                     r"\[5, 1, 3, 3\] in the file, \[4, 1, 3, 3\] in the model\).*pass --partial-weights"),
]


def _weights(files, key) -> Path:
    return files["root"] / "nope.pt" if key == "missing" else files[key]


def _experiment(files, tmp_path, *extra) -> list:
    return ["experiment", "duration", files["spec"], "--images", files["image"], "--levels", "1", "--intro", "1",
            "--out", tmp_path / "exp", *extra]


@pytest.mark.parametrize("key,message", BAD_WEIGHTS, ids=[k for k, _ in BAD_WEIGHTS])
@pytest.mark.parametrize("command", ["run", "experiment"])
def test_bad_weights_are_one_line(files, tmp_path, capsys, command, key, message):
    path = _weights(files, key)
    argv = (["run", files["spec"], "--weights", path, "--out", tmp_path / "r"] if command == "run"
            else _experiment(files, tmp_path, "--checkpoint", path))
    code, err = _run(argv, capsys)
    assert code == 1 and err.startswith("dynv: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "r").exists() and not (tmp_path / "exp").exists()


RESUME = [("empty.pt", "is empty (0 bytes), not a checkpoint"),
          ("trunc.pt", "is truncated or damaged (a zip archive that cannot be read)"),
          ("text.pt", "is a text file, not a checkpoint"), ("foreign.zip", "is a zip archive but not one torch.save"),
          ("tensor.pt", "holds a Tensor, not a state dict"), ("pickle.pt", "holds pickled Python objects")]


@pytest.mark.parametrize("key,message", RESUME, ids=[k for k, _ in RESUME])
def test_train_resume_from_a_bad_last_pt(files, tmp_path, capsys, key, message):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text((files["best"].parent / "run.json").read_text())
    (run / "last.pt").write_bytes(files[key].read_bytes())
    code, err = _run(["train", files["spec"], "--data", f"folder:{files['imgs']}", "--epochs", "2", "--batch", "4",
                      "--out", run, "--resume", "--no-progress"], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"dynv: {run / 'last.pt'} {message}"), err
    assert err.rstrip().endswith("; restore it, or pass --force to start afresh")


def test_train_resume_refuses_weights_that_do_not_fit(files, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    ckpt = checkpoint.load(files["last"])
    ckpt.model = checkpoint.load(files["foreign_ckpt"]).model
    checkpoint.save(run / "last.pt", ckpt)
    code, err = _run(["train", files["spec"], "--data", f"folder:{files['imgs']}", "--epochs", "2", "--batch", "4",
                      "--out", run, "--resume", "--no-progress"], capsys)
    assert code == 1 and "does not fit Tiny: 7 tensors differ in shape" in err
    assert err.rstrip().endswith("pass --force to start afresh") and "--partial-weights" not in err


@pytest.mark.parametrize("key", ["best", "last", "plain"])
def test_run_takes_train_checkpoints_and_state_dicts(files, tmp_path, capsys, key):
    code, err = _run(["run", files["spec"], "--weights", files[key], "--out", tmp_path / "r"], capsys)
    assert code == 0 and err == ""
    saved = torch.load(tmp_path / "r" / "responses.pt", weights_only=True)
    model = dd.compile(TINY)
    model.load_state_dict(checkpoint.load(files[key]).model)
    with torch.no_grad():
        again = model.run(builtin_image(*model.input_shape).unsqueeze(0))
    torch.testing.assert_close(saved["logits"], again.logits)  # the run used exactly these weights


def test_run_applies_the_checkpoints_params(files, tmp_path, capsys):
    """A model trained with --set classes=3 runs from its checkpoint without repeating the --set."""
    ckpt = checkpoint.load(files["best"])
    model = dd.compile(TINY, {"classes": "3"})
    checkpoint.save(tmp_path / "c3.pt", checkpoint.Checkpoint(model.state_dict(), {"classes": "3"}))
    code, err = _run(["run", files["spec"], "--weights", tmp_path / "c3.pt", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    assert torch.load(tmp_path / "r" / "responses.pt", weights_only=True)["logits"].shape[-1] == 3
    assert ckpt.params == {}


def test_partial_weights_loads_what_fits(files, tmp_path, capsys):
    code, err = _run(["run", files["spec"], "--weights", files["foreign_ckpt"], "--partial-weights",
                      "--out", tmp_path / "r"], capsys)
    assert code == 0 and "note: 3 of 10 tensors loaded" in err and "7 keep their seeded values" in err, err
    code, err = _run(_experiment(files, tmp_path, "--checkpoint", files["foreign_ckpt"], "--partial-weights"), capsys)
    assert code == 0 and "note: variant default does not fit the checkpoint: 3 of 10 tensors loaded" in err, err
    weights = {row["weights"] for row in csv.DictReader((tmp_path / "exp" / "duration.csv").open())}
    assert weights == {"checkpoint partial: 3/10 loaded, 7 seeded, 7 unused"}


@pytest.mark.parametrize("sweep,notes", [("classes=2,3", 1), ("classes=3,4", 2), ("kind=full,none", 1)])
def test_a_sweep_that_changes_shapes_loads_what_matches(files, tmp_path, capsys, sweep, notes):
    """The checkpoint fits one variant, or the model without the sweep: no --partial-weights needed."""
    code, err = _run(_experiment(files, tmp_path, "--checkpoint", files["best"], "--sweep", sweep), capsys)
    assert code == 0, err
    assert err.count("note: variant") == notes


def test_a_sweep_with_another_specs_checkpoint_is_refused(files, tmp_path, capsys):
    code, err = _run(_experiment(files, tmp_path, "--checkpoint", files["foreign_ckpt"], "--sweep", "classes=2,3"),
                     capsys)
    assert code == 1 and "does not fit Tiny" in err and "--partial-weights" in err


def test_a_checkpoint_folder_suggests_its_file(files, capsys):
    with pytest.raises(checkpoint.CheckpointError, match=r"is a folder, not a checkpoint; did you mean .*best\.pt"):
        checkpoint.load(files["best"].parent)


# ---------------------------------------------------------------------- images
BAD_IMAGES = [
    ("missing", r"no image at .*nope\.png"),
    ("empty.png", r"empty\.png is empty \(0 bytes\), not an image"),
    ("text.png", r"text\.png is not an image: it is a text file"),
    ("corrupt.png", r"corrupt\.png is a truncated or damaged PNG file"),
    ("bomb.png", r"bomb\.png has more pixels than the 89 megapixels an image may have \(a decompression bomb\?\)"),
    ("big.png", r"big\.png is 10000 x 10000 \(100 megapixels\), more than the 89 megapixels"),
    ("nan.tif", r"nan\.tif holds 1 non-finite value \(NaN first at channel 0, row 3, column 4\); images must be finite"),
    ("nan.npy", r"nan\.npy holds 1 non-finite value \(NaN first at channel 0, row 3, column 4\)"),
    ("nan.pt", r"nan\.pt holds 1 non-finite value \(NaN first at channel 0, row 3, column 4\)"),
]


@pytest.mark.parametrize("key,message", BAD_IMAGES, ids=[k for k, _ in BAD_IMAGES])
@pytest.mark.parametrize("command", ["run", "experiment"])
def test_bad_images_are_one_line(files, tmp_path, capsys, command, key, message):
    path = files["root"] / "nope.png" if key == "missing" else files[key]
    argv = (["run", files["spec"], "--image", path, "--out", tmp_path / "r"] if command == "run" else
            ["experiment", "duration", files["spec"], "--images", path, "--levels", "1", "--out", tmp_path / "e"])
    code, err = _run(argv, capsys)
    assert code == 1 and err.startswith("dynv: ") and err.count("\n") == 1, err
    assert re.search(message, err), err


def test_a_bad_image_in_a_training_folder_names_the_file(files, tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
        for i in range(4):
            (data / name / f"{i}.png").write_bytes(files["image"].read_bytes())
    (data / "b" / "3.png").write_text("oops")
    code, err = _run(["train", files["spec"], "--data", f"folder:{data}", "--out", tmp_path / "t", "--no-progress",
                      "--batch", "2"], capsys)
    # folders stream, so the file is found when a batch (training or held-out) needs it
    assert code == 1 and re.fullmatch(re.escape(f"dynv: {data / 'b' / '3.png'} is not an image: it is a text file "
                                                f"(give a PNG, JPEG, TIFF, ... or a .npy/.pt tensor) (an image of ")
                                      + r"data:(train|test)\); remove or replace it\n", err), err


def test_float_and_16_bit_images_keep_their_values(tmp_path):
    """Pillow's own conversion to 8 bits would zero a float image in [0, 1] and saturate 16-bit ones."""
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(ramp, "F").save(tmp_path / "f.tif")
    Image.fromarray((ramp * 65535).round().astype(np.uint16)).save(tmp_path / "i16.png")
    np.save(tmp_path / "r.npy", np.stack([ramp] * 3))
    for name in ("f.tif", "i16.png", "r.npy"):
        got = load_image(tmp_path / name, 1, 8, 8)[0].numpy()
        np.testing.assert_allclose(got, ramp, atol=1e-4, err_msg=name)
    with pytest.raises(ImageError, match=r"holds values from 0 to 255; scale them to \[0, 1\]"):
        Image.fromarray(ramp * 255, "F").save(tmp_path / "f255.tif")
        load_image(tmp_path / "f255.tif", 1, 8, 8)
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(ImageError, match=r"holds shape \[5\]; an image tensor is \(H, W\) or \(C, H, W\)"):
        load_image(tmp_path / "v.npy", 1, 8, 8)


# --------------------------------------------------------------- check_finite
FRAGILE = """model Fragile
time { dt = 2 ms  steps = 4 }
input image [1, 6, 6]
area V1 [1] { r = input - 0.5 }
area V2 [1] { r = sqrt(input) }
image -> V1 : scale(1.0)
V1 -> V2 : identity, delay 4 ms
readout V2 : avgpool | linear(2)
"""


def test_forward_can_opt_into_the_non_finite_check():
    checked, plain = dd.compile(FRAGILE, check_finite=True), dd.compile(FRAGILE)
    assert not plain.check_finite and checked.check_finite
    plain.load_state_dict(checked.state_dict())
    bright = torch.ones(2, 1, 6, 6)
    torch.testing.assert_close(checked(bright), plain(bright))  # finite: the same logits
    dark = torch.zeros(2, 1, 6, 6)
    assert torch.isnan(plain(dark)).any()  # off (the default): NaN comes back silently
    with pytest.raises(NonFiniteError, match=r"non-finite values \(nan\) in area V2 at step 2 \(4 ms\), batch item 0"):
        checked(dark)
    movie = torch.ones(3, 4, 1, 6, 6)
    movie[2, 1, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"\(inf\) in the input at step 1 \(2 ms\), batch item 2") as info:
        checked(movie)
    assert (info.value.area, info.value.step, info.value.item) == ("input", 1, 2)
    plain.check_finite = True  # the attribute switches it, as compile(check_finite=True) does
    with pytest.raises(NonFiniteError, match="in area V2"):
        plain(dark)


# ----------------------------------------------------------------- --set, params
X4 = ROOT / "specs" / "dyrcnn_x4.dyn"
BAD_SETS = [
    ("size=abc", "--set size=abc: error[E026]: cannot read the value 'abc': unknown param 'abc'",
     "hint: the spec has size = 64; e.g. --set size=64"),
    ("tau=5 ms ms", "--set tau=5 ms ms: error[E026]: cannot read the value '5 ms ms': 'ms' is a unit and may only follow "
                    "a number, once", "e.g. --set tau=5 ms"),
    ("size=1e400", "--set size=1e400: error[E026]: cannot read the value '1e400': the number '1e400' is too large (the "
                   "largest is about 1.8e308)", None),
    ("size=", "--set size=: error[E026]: cannot read the value '': it is empty", None),
    ("size=(3", "--set size=(3: error[E026]: cannot read the value '(3': it ends too soon", None),
    ("size=3 4", "--set size=3 4: error[E026]: cannot read the value '3 4': unexpected '4' after '3'", None),
    ("size=\"x", "--set size=\"x: error[E026]: cannot read the value '\"x': a string is not closed", None),
    ("tau=5", "--set tau=5: error[E026]: param 'tau' is a time (5 ms), but the override gives a dimensionless number (5)",
     "hint: write e.g. --set tau=5 ms"),
    ("recurence=self", "--set recurence=self: error[E025]: cannot set unknown param 'recurence' (did you mean "
                       "'recurrence'?)", None),
]


@pytest.mark.parametrize("pair,message,hint", BAD_SETS, ids=[p for p, _, _ in BAD_SETS])
def test_bad_set_values_quote_what_was_typed(capsys, pair, message, hint):
    code, err = _run(["check", X4, "--set", pair], capsys)
    lines = err.splitlines()
    assert code == 1 and lines[0] == message, err
    assert hint is None or hint in err
    assert "DyRCNNx4 (DynVision" not in err  # no line of the spec is shown for a value typed on the command line


@pytest.mark.parametrize("command", ["run", "params", "compile"])
def test_set_errors_read_the_same_in_every_command(files, tmp_path, capsys, command):
    code, err = _run([command, files["spec"], "--set", "size=abc", *(["--out", tmp_path / "r"] if command == "run"
                                                                      else ["-o", tmp_path / "m.py"]
                                                                      if command == "compile" else [])], capsys)
    assert code == 1 and err.startswith("--set size=abc: error[E026]: cannot read the value 'abc'"), err


def test_train_and_experiment_quote_set_and_sweep(files, tmp_path, capsys):
    code, err = _run(["train", files["spec"], "--set", "tau=5 ms ms", "--data", f"folder:{files['imgs']}",
                      "--out", tmp_path / "t", "--no-progress"], capsys)
    assert code == 1 and err.startswith("--set tau=5 ms ms: error[E026]: cannot read the value '5 ms ms'"), err
    code, err = _run(_experiment(files, tmp_path, "--sweep", "tau=2 ms,abc"), capsys)
    assert code == 1 and "--sweep tau=abc: error[E026]: cannot read the value 'abc': unknown param 'abc'" in err, err


API_PARAMS = [
    ({"size": "abc"}, "params={'size': 'abc'}", "cannot read the value 'abc': unknown param 'abc'"),
    ({"tau": 5}, "params={'tau': 5}", "param 'tau' is a time (4 ms), but the override gives a dimensionless"),
    ({"size": float("inf")}, "params={'size': inf}", "the value 'inf' is not a finite number"),
    ({"size": 10 ** 400}, "params={'size': 1000", "is too large to be a number"),
    ({1: "2"}, "params", "params keys are param names (strings), got 1 (int)"),
    ({"size": [1, 2]}, "params={'size': [1, 2]}", "param 'size' takes a number, a bool or a string such as '5 ms', "
                                                  "not list"),
    ({"size": {"a": 1}}, "params={'size': {'a': 1}}", "not dict"),
    ({"size": None}, "params={'size': None}", "not NoneType"),
    (["size=3"], "params", "params must be a dict of param names to values, got list"),
    ({"nosuch": 1}, "params={'nosuch': 1}", "cannot set unknown param 'nosuch'"),
]


@pytest.mark.parametrize("params,where,message", API_PARAMS, ids=[str(p)[:30] for p, _, _ in API_PARAMS])
def test_api_params_errors_say_params(params, where, message):
    errors = [d for d in dd.check(TINY, params) if d.is_error]
    assert len(errors) == 1, errors
    assert errors[0].span.file.startswith(where) and message in errors[0].message, errors[0]
    text = errors[0].format(TINY)
    assert "--set" not in text and "model Tiny" not in text
    with pytest.raises(dd.DynError):
        dd.compile(TINY, params)


def test_api_params_of_every_plain_type_still_work():
    model = dd.compile(TINY, {"size": 16, "steps": 3.0, "tau": "3 ms", "kind": "none", "classes": np.int64(3)})
    assert model.input_shape == (1, 16, 16) and model.steps == 3 and model.classes == 3


# ------------------------------------------------------ subcommands, --version
def test_a_misspelt_subcommand_gets_a_did_you_mean(files, capsys):
    code, err = _run(["chek", files["spec"]], capsys)
    assert code == 2 and err == "dynv: unknown command 'chek' (did you mean 'check'?); see dynv --help\n"
    code, err = _run(["zzz"], capsys)
    assert code == 2 and "unknown command 'zzz' (one of check, compile, run, graph, experiment, train, params, " in err
    code, err = _run([files["spec"]], capsys)
    assert code == 2 and f"(a command comes first, e.g. dynv check {files['spec']})" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"dynv {version()}\n" and version() == dd.__version__


# --------------------------------------------------------------- dynv params
def _declared(text: str) -> list[str]:
    return re.findall(r"^param\s+(\w+)", text, re.M)


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_params_lists_every_param_of_every_spec(spec, capsys):
    code, err, table = _run_out(["params", spec], capsys)
    assert code == 0 and err == "" and table.startswith("name ")
    code, err, text = _run_out(["params", spec, "--json"], capsys)
    assert code == 0 and err == ""
    rows = json.loads(text)
    assert [r["name"] for r in rows] == _declared(spec.read_text())
    for r in rows:
        line = spec.read_text().splitlines()[r["line"] - 1]
        assert r["comment"] == (line.split("#", 1)[1].strip() if "#" in line else "")
        assert r["kind"] in ("number", "time", "bool", "string", "choice") and r["default"] == r["value"]


def test_params_table_shows_defaults_set_values_kinds_and_comments(files, capsys):
    code, err, out = _run_out(["params", files["spec"], "--set", "tau=6 ms", "--set", "kind=none"], capsys)
    table = out.splitlines()
    assert code == 0 and err == ""
    assert re.split(r"\s{2,}", table[0]) == ["name", "default", "--set", "kind", "comment"]
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in table[2:7]}
    assert rows["tau"] == ["tau", "4 ms", "6 ms", "time", "the areas' time constant"]
    assert rows["size"] == ["size", "12", "number", "input height = width"]
    assert rows["kind"] == ["kind", "full", "none", "choice", "full or none"]
    assert table[8] == "choices:" and table[9].startswith("  kind: full, none, self")
    widths = {line.index("number") for line in table if " number" in line}
    assert len(widths) == 1  # aligned


# ------------------------------------------------------------------------ fuzz
def _located(err: str) -> bool:
    """A `dynv: ...` line, or diagnostics located at a --set value or a line of the spec."""
    first = err.splitlines()[0] if err else ""
    return first.startswith(("dynv: ", "--set ")) or re.match(r".*\.dyn:\d+:\d+: error\[E\d+\]: ", first) is not None


@settings(max_examples=50, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["size", "tau", "kind", "steps", "classes"]), value=st.text(max_size=12))
def test_fuzz_set_values(files, capsys, name, value):
    code = main(["check", str(files["spec"]), "--set", f"{name}={value}"])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    assert code == 0 or _located(err), err


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_checkpoint_bytes(files, tmp_path_factory, data):
    """Truncate, flip or insert bytes of a real checkpoint: loading it gives the checkpoint or a
    CheckpointError, and loading that into the model fits or raises CheckpointError."""
    raw = bytearray(files["best"].read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    edit = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
    if edit == "truncate":
        raw = raw[:at]
    elif edit == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    else:
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    path = tmp_path_factory.mktemp("fuzz") / "m.pt"
    path.write_bytes(bytes(raw))
    try:
        ckpt = checkpoint.load(path)
        checkpoint.load_weights(dd.compile(TINY), ckpt.model)
    except checkpoint.CheckpointError as exc:
        assert str(path) in str(exc) or "the checkpoint" in str(exc)


@settings(max_examples=8, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 4000), flip=st.integers(0, 4000))
def test_fuzz_checkpoint_bytes_through_the_cli(files, tmp_path_factory, capsys, monkeypatch, cut, flip):
    import dynvision_dsl.plot
    import dynvision_dsl.science.plot.figures as figures

    monkeypatch.setattr(dynvision_dsl.plot, "plot_responses", lambda *a, **k: None)  # the fuzz is of the loading
    monkeypatch.setattr(figures, "write_figures", lambda *a, **k: [])
    raw = bytearray(files["best"].read_bytes())
    raw[flip % len(raw)] ^= 0x5A
    folder = tmp_path_factory.mktemp("fuzzcli")
    (folder / "m.pt").write_bytes(bytes(raw[:len(raw) - cut]))
    for argv in (["run", files["spec"], "--weights", folder / "m.pt", "--out", folder / "r"],
                 ["experiment", "duration", files["spec"], "--checkpoint", folder / "m.pt", "--images", files["image"],
                  "--levels", "1", "--intro", "1", "--out", folder / "e", "--force"]):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code in (0, 1) and "Traceback" not in err
        assert code == 0 or err.startswith("dynv: "), err
