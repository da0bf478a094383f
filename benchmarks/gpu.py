"""Every GPU check of issue 12 in one command, a few minutes on one card (an H200 by design):

    PYTHONPATH=$PWD python benchmarks/gpu.py [--quick] [--out benchmarks/gpu.md]

1. Device checks: every zoo spec (small sizes) gives on cuda the logits it gives on the CPU
   (TF32 off for the comparison), the standalone module's cuda logits equal the in-process
   model's, and the CUDA-graph replay equals the eager run on cuda (or says why it falls back).
2. DyRCNNx4, b8, (20, 3, 64, 64): eager fp32, CUDA graphs, torch.compile of the steps (with its
   compile time), both, bf16, bf16 + graphs; and DynVision 0.1.0's eager GPU forward for the
   ratio (target >= 5x). Medians of CUDA-event timings, modes interleaved, each logit error vs
   eager fp32 stated.
3. The achieved conv rate of DyRCNNx4 at b64, (20, 3, 224, 224) vs a measured cuDNN conv rate on
   this card (a large 3x3 conv, and the model's own convs timed alone); target >= 60%.
4. A DDP/nccl training step with world size 1 (vs the plain step), and `dynv train` under
   `torchrun --nproc_per_node 1` for a few optimiser steps.

The reference is imported as `dynvision` (run with the reference venv's python, or this script
adds /work/main/.venv-reference's site-packages, or --reference-site PATH); where it cannot be
imported its row says so. On a machine without that venv (a lent GPU machine gets the working
tree only), pack it here and carry it:

    python benchmarks/gpu.py --pack-reference .venv-gpu-reference/site.tar.gz     # git-ignored
    python benchmarks/gpu.py --reference-site .venv-gpu-reference/site.tar.gz --out $OUT/gpu.md

Without CUDA this prints one line and exits 0. Writes --out (default benchmarks/gpu.md) and
prints the same text.
"""
from __future__ import annotations

import argparse
import datetime
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SITE = "/work/main/.venv-reference/lib/python3.11/site-packages"
TARGET_RATIO, TARGET_RATE = 5.0, 0.60
MODES = {"size": 64, "steps": 20, "batch": 8}  # the DyRCNNx4 forward config
RATE = {"size": 224, "steps": 20, "batch": 64}  # the conv-rate config
BIG_CONV = (64, 256, 56, 56)  # the reference conv: (batch, channels in = out, height, width), 3x3
TRAIN_TIMEOUT = 240  # seconds for the torchrun `dynv train` smoke run
TRAIN_STEPS = 20  # optimiser steps of that run


def log(*a) -> None:
    print(*a, flush=True)


# --------------------------------------------------------------------------- timing

def timed_interleaved(calls: dict, repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each callable, timed with CUDA events, interleaved per round."""
    import torch

    for fn in calls.values():
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times[name].append(start.elapsed_time(end) / 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def strict_fp32():
    """A context with TF32 off for convolutions and matmuls (correctness checks)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def scope():
        old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    return scope()


def relative(got, want) -> float:
    return float((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-30))


def graphed_call(model, x):
    """model(x) with the steady step replayed; a fallback warning becomes an error (it must replay)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="cuda_graphs", category=RuntimeWarning)
        with torch.no_grad():
            return model(x)


# --------------------------------------------------------------------------- 1. device checks

def small_params(path: Path) -> dict:
    text = path.read_text()
    params = {k: v for k, v in {"size": 32, "steps": 20, "idle_steps": 3}.items() if f"param {k} " in text}
    return params | ({"size": 64} if path.stem == "alexnet" else {})


def device_checks() -> list[tuple]:
    """(spec, cuda vs cpu rel. error, graphs vs eager on cuda rel. error or the fallback reason)."""
    import torch

    import dynvision_dsl as dd
    from dynvision_dsl.runtime.execution import Execution

    rows = []
    for path in sorted((ROOT / "specs").glob("*.dyn")):
        torch.manual_seed(0)
        model = dd.compile(path, small_params(path)).eval()
        x = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad(), strict_fp32():
            cpu = model(x)
            model.cuda()
            gpu = model(x.cuda())
            model.execution = Execution(cuda_graphs=True)
            try:
                graphed = relative(graphed_call(model, x.cuda()), gpu)
                graphs = f"{graphed:.1e}"
            except RuntimeWarning as exc:
                graphs = f"eager: {str(exc).partition('eagerly: ')[2]}"
        rows.append((path.stem, relative(gpu.cpu(), cpu), graphs))
        log(f"  {path.stem}: cuda vs cpu {rows[-1][1]:.1e}; graphs vs eager {graphs}")
    return rows


def standalone_check() -> float:
    """Relative logit error of the emitted standalone module vs the in-process model, both on cuda."""
    import importlib.util
    import re

    import torch

    import dynvision_dsl as dd

    path = ROOT / "specs" / "dyrcnn_x4.dyn"
    torch.manual_seed(0)
    model = dd.compile(path, {"size": 32}).eval().cuda()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "x4.py"
        file.write_text(dd.emit(path, {"size": 32}))
        spec = importlib.util.spec_from_file_location("x4", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cls = getattr(module, re.findall(r"^class (\w+)\(nn.Module\)", file.read_text(), re.M)[-1])
    standalone = cls().eval()
    standalone.load_state_dict(model.state_dict())
    standalone.cuda()
    x = torch.rand(2, 3, 32, 32, device="cuda")
    with torch.no_grad(), strict_fp32():
        return relative(standalone(x), model(x))


# --------------------------------------------------------------------------- 2. modes + reference

def import_reference(site: str | None):
    """The dynvision module, or the reason it cannot be imported. `site` is a site-packages
    folder or a .tar.gz of one (`--pack-reference` makes it), extracted to a temporary folder."""
    try:
        import dynvision.models  # noqa: F401
        return dynvision.models, None
    except ImportError:
        pass
    for folder in [site, REFERENCE_SITE]:
        if folder and str(folder).endswith(".tar.gz") and Path(folder).is_file():
            import tarfile

            into = tempfile.mkdtemp(prefix="dynvision-reference-")
            with tarfile.open(folder) as tar:
                tar.extractall(into, filter="data")
            folder = into
        if folder and Path(folder).is_dir():
            sys.path.append(str(folder))  # after the system site: torch stays this python's
            try:
                import dynvision.models
                return dynvision.models, None
            except Exception as exc:  # a broken or partial site: say so
                return None, f"importing dynvision from {folder} failed: {type(exc).__name__}: {exc}"
    return None, (f"DynVision 0.1.0 is not importable (not installed, and no {REFERENCE_SITE}); run with the "
                  f"reference venv's python or pass --reference-site")


def pack_reference(out: str) -> int:
    """Write the reference venv's own packages (not pip's tools) as a .tar.gz for --reference-site
    on a machine without the venv (carry it in a git-ignored folder such as .venv-gpu-reference/)."""
    import tarfile

    site = Path(REFERENCE_SITE)
    if not site.is_dir():
        print(f"benchmarks/gpu.py: no {site} to pack")
        return 1
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        for entry in sorted(site.iterdir()):
            if not entry.name.startswith(("pip", "setuptools", "pkg_resources", "_distutils_hack", "__pycache__")):
                tar.add(entry, arcname=entry.name, filter=lambda t: None if "__pycache__" in t.name else t)
    print(f"wrote {out} ({Path(out).stat().st_size / 2 ** 20:.0f} MiB)")
    return 0


def build_reference(models, size: int, steps: int):
    """DyRCNNx4 as DynVision builds it, on cuda, its lazy adapters made by one batch-1 forward."""
    import math

    import torch

    ref = models.DyRCNNx4(input_dims=(steps, 3, size, size), n_classes=10).float().eval()
    extra = int(math.ceil(float(getattr(ref, "history_length", 0.0)) / float(ref.dt))) + 2
    with torch.no_grad():
        ref(torch.randn(1, steps + extra, 3, size, size, generator=torch.Generator().manual_seed(12345)))
    return ref.cuda()


def modes_table(repeat: int, site: str | None) -> dict:
    """Median forward seconds of each mode of DyRCNNx4 b8 64 px (and the reference), errors, compile time."""
    import torch

    import dynvision_dsl as dd
    from dynvision_dsl.runtime.execution import Execution

    size, steps, batch = MODES["size"], MODES["steps"], MODES["batch"]
    spec = ROOT / "specs" / "dyrcnn_x4.dyn"
    models, reason = import_reference(site)
    try:
        ref = build_reference(models, size, steps) if models is not None else None
    except Exception as exc:  # the reference fails on this card: its row says so
        ref, reason = None, f"building or running DynVision 0.1.0 failed: {type(exc).__name__}: {exc}"
    torch.manual_seed(0)
    base = dd.compile(spec, {"size": size, "steps": steps}).eval()
    if ref is not None:
        base.load_dynvision(ref.state_dict())
    x = torch.randn(batch, steps, 3, size, size, generator=torch.Generator().manual_seed(1)).cuda()
    settings = {"eager fp32": (Execution(), False), "CUDA graphs": (Execution(cuda_graphs=True), False),
                "torch.compile steps": (Execution(), True),
                "torch.compile steps + CUDA graphs": (Execution(cuda_graphs=True), True),
                "bf16": (Execution(precision="bf16"), False),
                "bf16 + CUDA graphs": (Execution(cuda_graphs=True, precision="bf16"), False)}
    built, compile_s, notes = {}, None, []
    for name, (execution, compiled) in settings.items():
        model = dd.compile(spec, {"size": size, "steps": steps}).eval()
        model.load_state_dict(base.state_dict())
        model.cuda().execution = execution
        if compiled:
            try:
                seconds = model.compile_steps(x)
            except Exception as exc:  # no Triton, an inductor bug: the other modes still count
                notes.append(f"{name} left out: torch.compile failed: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
                continue
            compile_s = compile_s or seconds
            log(f"  {name}: compiled the steps in {seconds:.1f} s")
        built[name] = model
    with torch.no_grad():
        want = built["eager fp32"](x)
        errors = {name: relative(graphed_call(m, x) if m.execution.cuda_graphs else m(x), want)
                  for name, m in built.items()}
        calls = {name: (lambda m=m: graphed_call(m, x)) for name, m in built.items()}
        if ref is not None:
            errors["DynVision 0.1.0 eager"] = relative(ref(x), want)
            calls["DynVision 0.1.0 eager"] = lambda: ref(x)
        seconds = timed_interleaved(calls, repeat)
    for name in calls:
        log(f"  {name}: {seconds[name] * 1000:.2f} ms, logit error {errors[name]:.1e}")
    if reason:
        log(f"  reference skipped: {reason}")
    return {"seconds": seconds, "errors": errors, "compile_s": compile_s, "reference": reason, "notes": notes}


# --------------------------------------------------------------------------- 3. conv rate

def conv_rate(repeat: int) -> dict:
    """FLOP/s of DyRCNNx4 b64 224 px (eager and graphs), its convs alone, and a large 3x3 conv."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import dynvision_dsl as dd
    from dynvision_dsl.runtime.execution import Execution

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from speed import count_flops

    size, steps, batch = RATE["size"], RATE["steps"], RATE["batch"]
    torch.manual_seed(0)
    model = dd.compile(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": size, "steps": steps}).eval().cuda()
    graphed = dd.compile(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": size, "steps": steps}, cuda_graphs=True).eval()
    graphed.load_state_dict(model.state_dict())
    graphed.cuda()
    x = torch.rand(batch, 3, size, size, device="cuda")
    flops = count_flops(model, x)
    shapes = {}  # each conv once, with the input it first gets: one steady step's convs

    def seen(module, inputs, output) -> None:
        shapes.setdefault(module, (inputs[0].shape, inputs[0].stride()))
    hooks = [m.register_forward_hook(seen) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    model_s = timed_interleaved({"eager": lambda: graphed_call(model, x), "graphs": lambda: graphed_call(graphed, x)},
                                repeat, warmup=1)
    alone = _convs_alone(shapes, repeat)
    n, c, h, w = BIG_CONV
    big_in = torch.randn(n, c, h, w, device="cuda").to(memory_format=torch.channels_last)
    big_w = torch.randn(c, c, 3, 3, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad():
        big_s = timed_interleaved({"conv": lambda: F.conv2d(big_in, big_w, padding=1)}, repeat * 4)["conv"]
    big = 2 * c * 9 * c * h * w * n / big_s
    return {"flops": flops, "eager": flops / model_s["eager"], "graphs": flops / model_s["graphs"],
            "alone": alone, "big": big, "tf32": torch.backends.cudnn.allow_tf32}


def _convs_alone(shapes: list, repeat: int) -> float:
    """FLOP/s of the model's step convolutions run back to back on their own inputs' shapes."""
    import torch

    total = 0
    calls = []
    with torch.no_grad():
        for module, (shape, stride) in shapes.items():
            x = torch.empty_strided(shape, stride, device="cuda").normal_()
            out = module(x)
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * (module.in_channels // module.groups) * k * module.out_channels * out[0, 0].numel() * shape[0]
            calls.append((module, x))
        seconds = timed_interleaved({"convs": lambda: [m(x) for m, x in calls]}, repeat * 2)["convs"]
    return total / seconds


# --------------------------------------------------------------------------- 4. DDP

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_step(repeat: int) -> dict:
    """Seconds per training step (forward, cross-entropy at every step, backward, Adam) of DyRCNNx4
    b8 64 px, plain and under DistributedDataParallel with nccl, world size 1."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    import dynvision_dsl as dd

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        size, batch = MODES["size"], MODES["batch"]
        model = dd.compile(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": size, "steps": MODES["steps"]}).cuda().train()
        wrapped = DistributedDataParallel(model, device_ids=[0])
        x = torch.rand(batch, 3, size, size, device="cuda")
        labels = torch.randint(0, 10, (batch,), device="cuda")
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)

        def step(net):
            optimizer.zero_grad(set_to_none=True)
            logits = net(x)
            F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(logits.shape[1])).backward()
            optimizer.step()
        seconds = timed_interleaved({"plain": lambda: step(model), "ddp": lambda: step(wrapped)}, repeat)
    finally:
        dist.destroy_process_group()
    return seconds


def torchrun_train() -> str:
    """`dynv train` under torchrun with one process for TRAIN_STEPS optimiser steps: its images/s, or why not."""
    import csv
    import json

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port",
               str(_free_port()), "-m", "dynvision_dsl.cli", "train", str(ROOT / "specs" / "dyrcnn_x4.dyn"),
               "--data", "digits", "--set", "size=32", "--set", "steps=10", "--epochs", "1",
               "--max-steps", str(TRAIN_STEPS), "--batch", "32", "--device", "cuda", "--out", str(Path(tmp) / "run"), "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TRAIN_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            return f"FAILED: no result within {TRAIN_TIMEOUT} s"
        wall = time.perf_counter() - start
        if done.returncode != 0:
            return f"FAILED (exit {done.returncode}): {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
        info = json.loads((Path(tmp) / "run" / "run.json").read_text())
        rows = list(csv.DictReader((Path(tmp) / "run" / "metrics.csv").open()))
        speed = rows[-1].get("images_per_s", "?") if rows else "?"
        return (f"ok: world size {info['world_size']} on {info['device']}, {speed} training images/s "
                f"(metrics.csv), {wall:.0f} s in all")


# --------------------------------------------------------------------------- report

def _config(c: dict) -> str:
    return f"b{c['batch']}, ({c['steps']}, 3, {c['size']}, {c['size']})"


def environment() -> dict:
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "gpu": f"{props.name}, {props.total_memory / 2 ** 30:.0f} GiB, {props.multi_processor_count} SMs",
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def _header(env: dict, argv, total_s: float) -> list[str]:
    import torch

    return ["# GPU benchmark (issue 12)", "",
            f"- Date: {env['date']}; {env['gpu']}; torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
            f"- Command: `PYTHONPATH=$PWD python benchmarks/gpu.py {' '.join(argv)}`; {total_s:.0f} s in all",
            "- Timing: CUDA events around each call, torch.cuda.synchronize after it; modes interleaved per round; "
            "medians; forward under torch.no_grad() in eval mode. TF32 as torch's defaults have it in the timings "
            f"(cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}), "
            "off in the device checks.", ""]


def _checks_md(result) -> list[str]:
    checks, standalone = result
    lines = ["| spec | cuda vs cpu, max rel. logit error | CUDA graphs vs eager on cuda |", "|---|---|---|"]
    lines += [f"| {name} | {err:.1e} | {graphs} |" for name, err, graphs in checks]
    return lines + ["", f"Standalone module (`dynv compile`) vs the in-process model on cuda: {standalone:.1e}."]


def _modes_md(modes: dict) -> list[str]:
    seconds, errors = modes["seconds"], modes["errors"]
    ref = seconds.get("DynVision 0.1.0 eager")
    lines = [f"Reference row skipped: {modes['reference']}.", ""] if modes["reference"] else []
    lines += [f"{note}.\n" for note in modes.get("notes", [])]
    lines += ["| mode | median ms | vs eager fp32 | vs DynVision eager | max rel. logit error vs eager fp32 |",
              "|---|---|---|---|---|"]
    for name, s in seconds.items():
        vs_ref = f"{ref / s:.2f}x" if ref else "-"
        lines.append(f"| {name} | {s * 1000:.2f} | {seconds['eager fp32'] / s:.2f}x | {vs_ref} | {errors[name]:.1e} |")
    best = min((s, n) for n, s in seconds.items() if not n.startswith("DynVision"))
    verdict = (f"best mode ({best[1]}) {ref / best[0]:.2f}x the reference's eager GPU forward: "
               f"{'MET' if ref / best[0] >= TARGET_RATIO else 'NOT MET'} (target >= {TARGET_RATIO:g}x)"
               if ref else "not measured (no reference)")
    took = (f"torch.compile of the step variants took {modes['compile_s']:.1f} s (the first run of the example "
            "input)." if modes["compile_s"] is not None else "torch.compile: not measured.")
    return lines + ["", took, "", f"Target: {verdict}."]


def _rate_md(rate: dict) -> list[str]:
    best = max(rate["eager"], rate["graphs"]) / rate["big"]
    return [f"Conv/linear FLOPs per forward: {rate['flops'] / 1e12:.2f} TFLOP.", "",
            "| what | TFLOP/s | share of the large-conv rate |", "|---|---|---|",
            f"| large 3x3 conv {BIG_CONV}, {BIG_CONV[1]} -> {BIG_CONV[1]}, channels-last | {rate['big'] / 1e12:.1f} "
            "| 100% |",
            f"| the model's step convs alone, back to back | {rate['alone'] / 1e12:.1f} | "
            f"{rate['alone'] / rate['big']:.0%} |",
            f"| DyRCNNx4 forward, eager | {rate['eager'] / 1e12:.1f} | {rate['eager'] / rate['big']:.0%} |",
            f"| DyRCNNx4 forward, CUDA graphs | {rate['graphs'] / 1e12:.1f} | {rate['graphs'] / rate['big']:.0%} |",
            "", f"Target >= {TARGET_RATE:.0%} of the card's cuDNN conv rate: "
            f"{'MET' if best >= TARGET_RATE else 'NOT MET'} (best {best:.0%})."]


def _ddp_md(result) -> list[str]:
    ddp, trainer = result
    return ["| step | median ms |", "|---|---|", f"| plain | {ddp['plain'] * 1000:.1f} |",
            f"| DDP (nccl) | {ddp['ddp'] * 1000:.1f} |", "",
            f"`dynv train` under `torchrun --nproc_per_node 1`, `--device cuda` ({TRAIN_STEPS} optimiser steps, "
            f"32 px; with one process the trainer makes no process group, so the DDP row above is the nccl "
            f"measurement): {trainer}."]


SECTIONS = [  # title, what runs (given the repeat count and the args), how it is written
    ("Device checks (small sizes)", lambda r, a: (device_checks(), standalone_check()), _checks_md),
    (f"DyRCNNx4, {_config(MODES)}, forward", lambda r, a: modes_table(r, a.reference_site), _modes_md),
    (f"Conv rate, DyRCNNx4 {_config(RATE)}", lambda r, a: conv_rate(max(3, r // 2)), _rate_md),
    (f"Training step with DistributedDataParallel (nccl, world size 1), DyRCNNx4 {_config(MODES)}",
     lambda r, a: (ddp_step(r), torchrun_train()), _ddp_md),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed calls (5 instead of 10)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "gpu.md"), help="the report (default benchmarks/gpu.md)")
    ap.add_argument("--reference-site", help="a site-packages folder holding DynVision 0.1.0, or a .tar.gz of one")
    ap.add_argument("--pack-reference", metavar="OUT.tar.gz", help="pack the reference venv's packages for "
                    "--reference-site on another machine, and stop")
    args = ap.parse_args(argv)
    if args.pack_reference:
        return pack_reference(args.pack_reference)
    import torch

    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing measured")
        return 0
    sys.path.insert(0, str(ROOT))
    start, repeat = time.perf_counter(), 5 if args.quick else 10
    env = environment()
    log(f"{env['gpu']}, torch {env['torch']}")
    body = []
    for title, measure, render in SECTIONS:  # one section failing leaves the others measured
        log(f"== {title}")
        try:
            lines = render(measure(repeat, args))
        except Exception as exc:
            log(traceback.format_exc())
            lines = [f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"]
        body += [f"## {title}", "", *lines, ""]
    text = "\n".join(_header(env, argv if argv is not None else sys.argv[1:], time.perf_counter() - start) + body)
    Path(args.out).write_text(text)
    log(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
