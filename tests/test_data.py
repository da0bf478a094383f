"""science/data: folders stream (paths, not pixels), batches and their shards, --val-data,
--augment (training batches only), --normalize (recorded and reapplied by run), --max-steps,
images/s, and one-line errors for bad folders. Tiny generated PNGs, all fast."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dynvision_dsl import checkpoint
from dynvision_dsl import compile as compile_spec
from dynvision_dsl.cli import main
from dynvision_dsl.science import data as D
from dynvision_dsl.science.data import loader as L
from dynvision_dsl.science.data import transforms as T
from dynvision_dsl.stimuli import load_image
from dynvision_dsl.science.train import TrainError, train

SMALL = """model Small
param classes = 2
time { dt = 2 ms  steps = 2 }
input image [1, 8, 8]
area V1 [2] { r = input }
image -> V1 : conv(3)
readout V1 : avgpool | linear(classes)
"""
SHAPE = (1, 8, 8)


def _pngs(root: Path, per_class: int = 6, classes=("dark", "light"), size: int = 8, seed: int = 0) -> Path:
    """Grey PNGs, one sub-folder per class: darker or lighter noise."""
    g = torch.Generator().manual_seed(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = (0.2 + 0.4 * c + 0.3 * torch.rand(size, size, generator=g)).clamp(0, 1)
            Image.fromarray((img * 255).round().byte().numpy(), "L").save(root / name / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def no_learning_curve(monkeypatch):
    """These tests are about data: skip drawing learning_curve.png (most of a tiny run's time)."""
    import dynvision_dsl.science.train.loop as train_module
    monkeypatch.setattr(train_module, "plot_learning_curve", lambda *args, **kw: None)


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "small.dyn"
    path.write_text(SMALL)
    return path


def _quiet(line: str) -> None:
    pass


def _train(spec, data, out, **kw):
    kw = {"epochs": 1, "batch": 4, "lr": 0.05, "progress": False, "echo": _quiet, **kw}
    return train(spec, data=f"folder:{data}", out=out, **kw)


# ------------------------------------------------------------------ streaming
def test_a_folder_holds_paths_and_decodes_only_what_a_batch_needs(tmp_path, monkeypatch):
    folder = D.folder(_pngs(tmp_path / "img"), SHAPE)
    assert isinstance(folder.paths, np.ndarray) and folder.paths.dtype.kind == "U" and len(folder) == 12
    assert folder.paths[0] == "dark/0.png" and folder.classes == ["dark", "light"]
    assert not any(isinstance(v, torch.Tensor) and v.dim() > 1 for v in vars(folder).values())  # no pixels held
    decoded = []
    from dynvision_dsl import stimuli
    real = stimuli.load_image
    monkeypatch.setattr(stimuli, "load_image", lambda *a: decoded.append(a[0]) or real(*a))
    batches = D.train_loader(folder, 4, torch.device("cpu"), seed=1).epoch(1)
    index, x, y = next(batches)
    assert len(decoded) == 4 and x.shape == (4, *SHAPE) and torch.equal(y, folder.labels[index])
    assert torch.equal(x[0], real(tmp_path / "img" / folder.paths[int(index[0])], *SHAPE))


def test_shards_of_two_ranks_make_up_the_batches_of_one_process(tmp_path):
    folder = D.folder(_pngs(tmp_path / "img", per_class=7), SHAPE)  # 14 images: 3 batches of 4, 2 left out
    one = [b.index.tolist() for b in D.train_loader(folder, 4, torch.device("cpu"), seed=5).epoch(2)]
    ranks = [[b.index.tolist() for b in D.train_loader(folder, 4, torch.device("cpu"), world=2, rank=r,
                                                       seed=5).epoch(2)] for r in range(2)]
    assert len(one) == 3 and all(len(b) == 4 for b in one)
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(b) for b in one]
    assert isinstance(D.train_loader(folder, 4, torch.device("cpu")).sampler, torch.utils.data.DistributedSampler)
    again = [b.index.tolist() for b in D.train_loader(folder, 4, torch.device("cpu"), seed=5).epoch(3)]
    assert again != one  # a new order each epoch


def test_workers_decode_the_same_batches_as_the_main_process(tmp_path):
    folder = D.folder(_pngs(tmp_path / "img"), SHAPE)
    kw = dict(seed=2, augment=True)
    main_proc = list(D.train_loader(folder, 4, torch.device("cpu"), **kw).epoch(1))
    workers = list(D.train_loader(folder, 4, torch.device("cpu"), workers=2, **kw).epoch(1))
    for a, b in zip(main_proc, workers, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.x, b.x)


# ------------------------------------------------------------------ augmentation
def test_augment_changes_training_batches_but_never_held_out_ones(tmp_path):
    folder = D.folder(_pngs(tmp_path / "img", size=16), SHAPE)
    plain = list(D.train_loader(folder, 4, torch.device("cpu"), seed=0).epoch(1))
    aug = list(D.train_loader(folder, 4, torch.device("cpu"), seed=0, augment=True).epoch(1))
    aug2 = list(D.train_loader(folder, 4, torch.device("cpu"), seed=0, augment=True).epoch(2))
    assert [b.index.tolist() for b in plain] == [b.index.tolist() for b in aug]
    assert all(b.x.shape == (4, *SHAPE) for b in aug) and all(0 <= float(b.x.min()) <= float(b.x.max()) <= 1
                                                              for b in aug)
    assert not any(torch.equal(p.x, a.x) for p, a in zip(plain, aug))
    assert not torch.equal(torch.cat([b.x for b in aug]), torch.cat([b.x for b in aug2]))
    held_out = torch.cat([b.x for b in D.eval_loader(folder, 5, torch.device("cpu")).epoch()])
    assert torch.equal(held_out, folder.stack(torch.arange(len(folder))))
    memory = D.Dataset(folder.stack(torch.arange(len(folder))), folder.labels, folder.classes, "mem")
    direct = list(D.train_loader(memory, 4, torch.device("cpu"), seed=0).epoch(1))
    crops = list(D.train_loader(memory, 4, torch.device("cpu"), seed=0, augment=True).epoch(1))
    assert direct[0].x.shape == crops[0].x.shape and not torch.equal(direct[0].x, crops[0].x)  # digits too


def test_augment_in_training_leaves_the_held_out_images_alone(spec, tmp_path, monkeypatch):
    seen = []
    real = L.augment
    monkeypatch.setattr(L, "augment", lambda *a: seen.append(1) or real(*a))
    result = _train(spec, _pngs(tmp_path / "img", size=16), tmp_path / "run", augment=True, seed=3)
    assert len(seen) == result.metrics[0].steps * 4  # training images only (2 of 10 training left out)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["args"]["augment"] is True


def test_crop_box_stays_inside_and_covers_the_scale():
    g = torch.Generator().manual_seed(0)
    for h, w in [(8, 8), (40, 10), (10, 40), (224, 300)]:
        for _ in range(50):
            top, left, ch, cw = T.crop_box(h, w, g)
            assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0


# ------------------------------------------------------------------ --val-data
def test_val_data_is_the_held_out_set(spec, tmp_path):
    data, val = _pngs(tmp_path / "img", per_class=6), _pngs(tmp_path / "val", per_class=3, seed=9)
    (val / "light" / "0.png").unlink()  # 5 held-out images: no accuracy is 1/2
    flipped = tmp_path / "flipped"  # the same held-out images with their labels swapped
    shutil.copytree(val / "dark", flipped / "light")
    shutil.copytree(val / "light", flipped / "dark")
    good = _train(spec, data, tmp_path / "good", val_data=f"folder:{val}")
    bad = _train(spec, data, tmp_path / "bad", val_data=f"folder:{flipped}")
    info = json.loads((tmp_path / "good" / "run.json").read_text())
    assert info["data"]["train"] == 12 and info["data"]["test"] == 5  # all of --data trains
    assert info["args"]["val_data"] == f"folder:{val}" and good.metrics[0].steps == 3
    assert good.metrics[0].train_loss == bad.metrics[0].train_loss  # the same training
    # measured on --val-data: swapping its labels turns every hit into a miss
    assert bad.metrics[0].test_acc == pytest.approx(1 - good.metrics[0].test_acc) != good.metrics[0].test_acc


# ------------------------------------------------------------------ --normalize
def test_normalize_modes(tmp_path):
    folder = D.folder(_pngs(tmp_path / "img"), SHAPE)
    assert D.normalization("none", folder, 1, 0) is None
    assert T.imagenet(3).mean == T.IMAGENET_MEAN and T.imagenet(1).mean == (pytest.approx(0.449),)
    est = D.normalization("dataset", folder, 1, 0)
    pixels = folder.stack(torch.arange(len(folder))).double()
    assert est.mode == "dataset" and est.mean[0] == pytest.approx(float(pixels.mean()), abs=1e-6)
    assert est.std[0] == pytest.approx(float(pixels.std(unbiased=False)), abs=1e-6)
    x = torch.rand(2, *SHAPE)
    torch.testing.assert_close(est(x), (x - est.mean[0]) / est.std[0])
    with pytest.raises(D.DataError, match="1 or 3 input channels"):
        T.imagenet(2)


def test_a_checkpoint_records_the_normalisation_and_run_reapplies_it(spec, tmp_path, capsys):
    data = _pngs(tmp_path / "img")
    _train(spec, data, tmp_path / "run", normalize="dataset")
    ckpt = checkpoint.load(tmp_path / "run" / "best.pt")
    norm = D.recorded(ckpt.extra)
    assert norm is not None and norm.mode == "dataset" and ckpt.extra["args"]["normalize"] == "dataset"
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["data"]["normalize"] == norm.to_dict()
    image = data / "dark" / "0.png"
    assert main(["run", str(spec), "--weights", str(tmp_path / "run" / "best.pt"), "--image", str(image),
                 "--out", str(tmp_path / "r")]) == 0
    got = torch.load(tmp_path / "r" / "responses.pt", weights_only=True)["logits"]
    model = compile_spec(SMALL)
    checkpoint.load_weights(model, ckpt.model)
    model.eval()
    with torch.no_grad():
        want = model.run(norm(load_image(image, *SHAPE)).unsqueeze(0)).logits
        raw = model.run(load_image(image, *SHAPE).unsqueeze(0)).logits
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, raw)  # the normalisation mattered
    from dynvision_dsl import experiment as E
    assert E.make_variants(SMALL, checkpoint=ckpt)[0].model.input_transform == norm  # experiment too


def test_export_takes_a_checkpoint_and_its_normalisation(spec, tmp_path, capsys):
    """dynv export read --weights as a bare state dict (a checkpoint of dynv train failed to load)
    and never applied the normalisation the weights were trained with."""
    ort = pytest.importorskip("onnxruntime")
    data = _pngs(tmp_path / "img")
    _train(spec, data, tmp_path / "run", normalize="dataset")
    best = tmp_path / "run" / "best.pt"
    assert main(["export", str(spec), "--to", "onnx", "--weights", str(best), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "the ONNX graph normalises its input itself" in capsys.readouterr().err
    ckpt = checkpoint.load(best)
    model = compile_spec(SMALL)
    checkpoint.load_weights(model, ckpt.model)
    model.eval().input_transform = D.recorded(ckpt.extra)
    x = torch.rand(2, *SHAPE)
    with torch.no_grad():
        want = model(x.unsqueeze(1).expand(-1, model.steps, -1, -1, -1)).numpy()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-4
    assert main(["export", str(spec), "--to", "nir", "--weights", str(best), "-o", str(tmp_path / "m.nir")]) == 0
    assert "feed it normalised images" in capsys.readouterr().err
    nir = pytest.importorskip("nir")
    assert nir.read(str(tmp_path / "m.nir")).metadata["input_normalization"]["mode"] == "dataset"


def test_training_sees_the_normalised_frames_that_run_and_forward_see():
    from dynvision_dsl.science.train.presentation import show, stretch
    from dynvision_dsl.science.train.unroll import Unroll

    torch.manual_seed(0)
    model = compile_spec(SMALL.replace("steps = 2", "steps = 4")).eval()
    x = torch.rand(2, *SHAPE)
    raw = model(x)
    model.input_transform = T.Normalization("dataset", (0.3,), (0.2,))
    for pattern in ("1", "10"):  # blank frames are normalised too, as `run` does with the frames it is given
        shown = stretch(pattern, model.steps)
        with torch.no_grad():
            trained, _ = Unroll(model, shown)(x)
            torch.testing.assert_close(trained, model.run(show(x, shown)).logits)
    torch.testing.assert_close(Unroll(model, stretch("1", model.steps))(x)[0], model(x))
    assert not torch.allclose(model(x), raw)


def test_resume_refuses_a_changed_normalisation(spec, tmp_path, capsys):
    data = _pngs(tmp_path / "img")
    _train(spec, data, tmp_path / "run")
    with pytest.raises(TrainError, match=r"--normalize imagenet \(the run used none\)"):
        _train(spec, data, tmp_path / "run", epochs=2, resume=True, normalize="imagenet")


# ------------------------------------------------------------------ --max-steps, images/s
def test_max_steps_stops_after_exactly_that_many_steps(spec, tmp_path):
    lines = []
    result = _train(spec, _pngs(tmp_path / "img", per_class=10), tmp_path / "run", epochs=5, max_steps=6,
                    echo=lines.append)
    assert [r.steps for r in result.metrics] == [4, 2]  # 16 training images: 4 batches an epoch
    ckpt = checkpoint.load(tmp_path / "run" / "last.pt")
    steps = {int(s["step"]) for s in ckpt.extra["optimizer"]["state"].values()}
    assert steps == {6} and ckpt.epoch == 2
    assert "stopped after --max-steps 6 optimiser steps (epoch 2 of 5)" in lines
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[7] == "images_per_s" and all(float(r.split(",")[7]) > 0 for r in rows[1:])


def test_max_steps_also_ends_the_lr_schedule(spec, tmp_path):
    from dynvision_dsl.science.train import Regime

    data, cosine = _pngs(tmp_path / "img", per_class=10), Regime(schedule="cosine")  # 4 batches an epoch
    _train(spec, data, tmp_path / "capped", epochs=5, max_steps=6, regime=cosine)
    capped = checkpoint.load(tmp_path / "capped" / "last.pt").extra["schedule"]
    # laid out over 6 steps, the cosine has reached 0; over 5 x 4 = 20 it would still be at 0.79
    assert capped["last_epoch"] == 6 and capped["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ errors
def _cli(spec, data, out, *extra):
    return ["train", str(spec), "--data", f"folder:{data}", "--out", str(out), "--batch", "4", "--epochs", "1",
            "--no-progress", *extra]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_image_is_one_line_naming_it(spec, tmp_path, capsys, workers):
    data = _pngs(tmp_path / "img")
    (data / "dark" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(_cli(spec, data, tmp_path / "run", "--workers", str(workers))) == 1
    err = capsys.readouterr().err
    assert err == (f"dynv: {data / 'dark' / '0.png'} is a truncated or damaged PNG file; write it again (an image "
                   f"of img:train); remove or replace it\n")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_bad_folders_and_flags_are_one_line_errors(spec, tmp_path, capsys):
    data = _pngs(tmp_path / "img")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    _pngs(tmp_path / "one", classes=("only",))
    _pngs(tmp_path / "other", classes=("dark", "bright"))
    cases = [
        (_cli(spec, tmp_path / "nope", tmp_path / "o"), f"--data folder:{tmp_path / 'nope'}: no folder there"),
        (_cli(spec, tmp_path / "empty", tmp_path / "o"), f"--data folder:{tmp_path / 'empty'}: no images (.bmp"),
        (_cli(spec, tmp_path / "one", tmp_path / "o"), "the data (one) has one class (only); training needs"),
        (_cli(spec, data, tmp_path / "o", "--val-data", f"folder:{tmp_path / 'nope'}"),
         f"--val-data folder:{tmp_path / 'nope'}: no folder there"),
        (_cli(spec, data, tmp_path / "o", "--val-data", f"folder:{tmp_path / 'other'}"),
         "has classes bright, dark but --data"),
        (_cli(spec, data, tmp_path / "o", "--workers", "-1"), "--workers must be 0 or more, got -1"),
        (_cli(spec, data, tmp_path / "o", "--max-steps", "0"), "--max-steps must be at least 1, got 0"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("dynv: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_normalize_dataset_refuses_a_constant_channel(spec, tmp_path, capsys):
    for name, value in (("a", 0), ("b", 255)):
        (tmp_path / "flat" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), value, np.uint8), "L").save(tmp_path / "flat" / name / f"{i}.png")
    # two classes, each constant, but not the same constant: the set as a whole varies
    assert D.normalization("dataset", D.folder(tmp_path / "flat", SHAPE), 1, 0).std[0] > 0
    (tmp_path / "flat" / "b").rename(tmp_path / "b")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "flat" / "a" / "x.png")
    (tmp_path / "flat" / "c").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "flat" / "c" / "0.png")
    assert main(_cli(spec, tmp_path / "flat", tmp_path / "o", "--normalize", "dataset", "--batch", "2")) == 1
    assert "channel 0 of the training images (flat:train) is constant" in capsys.readouterr().err


def test_the_progress_bar_shows_images_per_second(spec, tmp_path, monkeypatch):
    import dynvision_dsl.science.train.loop as train_module
    from tqdm import tqdm

    postfixes = []

    class Bar(tqdm):  # tqdm redraws at most every 0.1 s, so read what the loop hands it
        def set_postfix(self, ordered_dict=None, refresh=True, **kw):
            postfixes.append({**(ordered_dict or {}), **kw})
            super().set_postfix(ordered_dict, refresh, **kw)

    monkeypatch.setattr(train_module, "tqdm", Bar)
    _train(spec, _pngs(tmp_path / "img"), tmp_path / "run", progress=True)
    assert len(postfixes) == 2 and all(float(p["img/s"]) > 0 for p in postfixes)


def test_a_gpu_run_pins_the_loaders_memory(tmp_path):
    folder = D.folder(_pngs(tmp_path / "img"), SHAPE)
    assert D.train_loader(folder, 4, torch.device("cuda"), workers=2).loader.pin_memory
    assert not D.train_loader(folder, 4, torch.device("cpu")).loader.pin_memory
