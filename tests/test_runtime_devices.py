"""Devices: the one --device parser (auto, cpu, cuda, cuda:N) behind run, experiment and train,
its one-line refusals (exit 2), and device-correctness of every compiled model and of the
standalone module: run on the meta device, any tensor the generated code or the runtime makes on
another device (the CPU, by default) is caught."""
import importlib.util
import re

import pytest
import torch
from torch.overrides import TorchFunctionMode

import dynvision_dsl as dd
from dynvision_dsl.cli import main
from dynvision_dsl.errors import DeviceError
from dynvision_dsl.util.device import check_device_name, resolve_device

from conftest import ROOT, SPECS

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
SMALL = {"size": 32, "steps": 12, "idle_steps": 3}
VARIANTS = [("dyrcnn_x4", {"recurrence": r}) for r in ("none", "self", "depthpointwise", "local")] + [
    ("dyrcnn_x4", {"feedback": "mul", "recurrence_gain": "0.9", "supralinearity": "2", "size": "16"}),
    ("cornet_rt", {"feedback": "add"}), ("cordsnet", {"feedback": "mul"}), ("dyrcnn_x8", {"recurrence_target": "middle"})]
VALID = sorted((ROOT / "tests" / "valid").glob("*.dyn"))


def small(path, extra=None) -> dict:
    """The spec's own size/steps/idle params set small (alexnet's pooling needs 64 px)."""
    text = path.read_text()
    params = {k: v for k, v in SMALL.items() if f"param {k} " in text}
    if path.stem == "alexnet":
        params["size"] = 64
    return params | dict(extra or {})


class OffDevice(TorchFunctionMode):
    """Records every tensor a torch function returns on a device other than `device`."""

    def __init__(self, device="meta"):
        super().__init__()
        self.device, self.seen = torch.device(device), []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.device != self.device:
                self.seen.append(f"{getattr(func, '__name__', func)} -> {value.device} {tuple(value.shape)}")
        return out


def run_on_meta(model) -> list[str]:
    """Simulate `model` on the meta device, recording every signal, with and without a seed;
    the tensors made elsewhere."""
    model.eval().to("meta")
    watch = OffDevice()
    for seed in (None, 3):
        x = {name: torch.rand(2, *shape, device="meta") for name, shape in model.inputs.items()}
        with torch.no_grad(), watch:
            model.simulate(x, record=list(model.signals), seed=seed)
    return watch.seen


# ------------------------------------------------------------------ the parser
@pytest.mark.parametrize("text", [None, "auto", "cpu"])
def test_auto_and_cpu_resolve_without_a_gpu(text):
    want = "cuda" if torch.cuda.is_available() and text != "cpu" else "cpu"
    assert resolve_device(text).type == want


@pytest.mark.parametrize("text, message", [
    ("gpu", "--device: unknown device 'gpu' (did you mean 'cpu'?); choose one of auto, cpu, cuda, cuda:N"),
    ("cuda:x", "--device: unknown device 'cuda:x'"), ("", "--device: unknown device ''"),
    ("tpu", "(did you mean 'cpu'?)")])
def test_bad_names_are_refused_without_torch(text, message):
    with pytest.raises(DeviceError) as info:
        check_device_name(text)
    assert message in str(info.value)


@NO_CUDA
@pytest.mark.parametrize("text", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_names_the_fix(text):
    with pytest.raises(DeviceError, match=rf"^--device {text}: CUDA is not available .*; pass --device cpu"):
        resolve_device(text)


def test_a_gpu_index_past_the_last_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match=r"cuda:2: this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


# ------------------------------------------------------------------ the commands
def _commands(tmp_path):
    spec = str(ROOT / "specs" / "dyrcnn_x2.dyn")
    out = str(tmp_path / "out")
    return {"run": ["run", spec, "--out", out],
            "experiment": ["experiment", "duration", spec, "--out", out, "--n-images", "2"],
            "train": ["train", spec, "--out", out, "--epochs", "1", "--no-progress"]}


@NO_CUDA
@pytest.mark.parametrize("command", ["run", "experiment", "train"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_every_command_refuses_cuda_in_one_line_with_exit_2(command, device, tmp_path, capsys):
    assert main(_commands(tmp_path)[command] + ["--device", device]) == 2
    err = capsys.readouterr().err
    assert err == (f"dynv: --device {device}: CUDA is not available (no CUDA build of torch, or no GPU visible); "
                   f"pass --device cpu (or --device auto)\n")
    assert not (tmp_path / "out").exists()  # refused before anything was built or written


@pytest.mark.parametrize("command", ["run", "experiment", "train"])
def test_every_command_refuses_an_unknown_device(command, tmp_path, capsys):
    assert main(_commands(tmp_path)[command] + ["--device", "tpu"]) == 2
    assert capsys.readouterr().err == ("dynv: --device: unknown device 'tpu' (did you mean 'cpu'?); choose one of "
                                       "auto, cpu, cuda, cuda:N\n")


def test_run_on_cpu_with_the_new_flags_writes_cpu_tensors(tmp_path, capsys):
    spec = str(ROOT / "specs" / "dyrcnn_x2.dyn")
    argv = ["run", spec, "--set", "size=16", "--set", "steps=10", "--out", str(tmp_path), "--device", "cpu",
            "--cuda-graphs", "--precision", "bf16"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "note: --cuda-graphs: running the steps eagerly: the input is on cpu; CUDA graphs need a CUDA device" in err
    saved = torch.load(tmp_path / "responses.pt", weights_only=True)
    assert saved["logits"].device.type == "cpu" and next(iter(saved["responses"].values())).dtype == torch.float32


# ------------------------------------------------------------------ nothing on the default device
def test_the_watch_catches_a_tensor_made_on_the_cpu():
    watch = OffDevice()
    with watch:
        torch.rand(2, device="meta") * torch.tensor(0.5)
    assert watch.seen == ["tensor -> cpu ()"]


@pytest.mark.parametrize("path", SPECS + VALID, ids=lambda p: p.stem)
def test_every_spec_runs_on_the_meta_device(path):
    torch.manual_seed(0)
    assert run_on_meta(dd.compile(path, small(path))) == []


@pytest.mark.parametrize("stem, extra", VARIANTS, ids=lambda v: str(v))
def test_zoo_variants_run_on_the_meta_device(stem, extra):
    path = ROOT / "specs" / f"{stem}.dyn"
    assert run_on_meta(dd.compile(path, small(path, extra))) == []


@pytest.mark.parametrize("stem", ["dyrcnn_x4", "cordsnet"])
def test_the_standalone_module_runs_on_the_meta_device(stem, tmp_path):
    path = ROOT / "specs" / f"{stem}.dyn"
    file = tmp_path / f"{stem}.py"
    file.write_text(dd.emit(path, small(path)))
    spec = importlib.util.spec_from_file_location(stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, re.findall(r"^class (\w+)\(nn.Module\)", file.read_text(), re.M)[-1])
    assert run_on_meta(cls()) == []


def test_the_training_normalisation_runs_on_the_meta_device():
    from dynvision_dsl.science.data.transforms import imagenet

    model = dd.compile(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": 16, "steps": 4}).eval().to("meta")
    model.input_transform = imagenet(3)  # as `dynv run --weights` restores it from a checkpoint
    watch = OffDevice()
    with torch.no_grad(), watch:
        model(torch.rand(2, 3, 16, 16, device="meta"))
    assert watch.seen == []
