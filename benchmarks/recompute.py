"""Peak memory and time of a DyRCNNx4 training step with recomputation (`recompute=K` or "auto").

usage:

    python benchmarks/recompute.py [--steps 40] [--size 64] [--batch 8] [--ks 1,2,4,5,10,auto] [--repeat 5]

One training step is forward + logits.sum().backward() (benchmarks/speed.py's train_step), on
(B, T, 3, S, S) noise, torch.set_num_threads(2). Peak memory: a fresh subprocess per configuration
(plain, then every K) compiles the model and measures the rise of its peak resident memory during
ONE step with speed.py's peak_rise (/proc/self/clear_refs, then VmHWM - VmRSS). Time: one model in
this process, the configurations interleaved within every round after a warm-up round, medians.
It checks that every K gives the plain run's gradients (to 1e-6) before timing. Writes
benchmarks/recompute.md and prints the same text.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import THREADS, compile_model, cpu_model, peak_rise, train_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_k(text: str) -> int | str:
    """A segment length, or "auto" (the balanced segments of the model's recompute="auto")."""
    return text if text == "auto" else int(text)


def model_for(S: int, T: int, k: int | str):
    torch.manual_seed(0)
    model = compile_model("x4", S, T)
    model.recompute = k
    return model


def mem_worker(spec: str) -> int:
    """--_mem S,T,B,K: one training step in this fresh process; print its peak-memory rise."""
    S, T, B = (int(v) for v in spec.split(",")[:3])
    k = parse_k(spec.split(",")[3])
    torch.set_num_threads(THREADS)
    model = model_for(S, T, k)
    x = torch.randn(B, T, 3, S, S)
    warm_checkpoint()
    print(json.dumps(peak_rise(lambda: train_step(model, x))))
    return 0


def warm_checkpoint() -> None:
    """One tiny checkpointed call, in every configuration: torch's checkpoint imports torch._dynamo
    on its first use (~150 MiB resident, once per process), which is not the step's memory."""
    from torch.utils.checkpoint import checkpoint

    checkpoint(torch.sin, torch.ones(1, requires_grad=True), use_reentrant=False).sum().backward()


# glibc's malloc serves freed large blocks again from its heap, whose pages stay resident, so with
# its default (dynamic) mmap threshold the resident peak also counts the holes that the per-step
# intermediates leave; with a fixed threshold every block over it is mapped and unmapped on its
# own, and the resident set follows the live tensors. Both are measured.
MALLOCS = {"default": {}, "mmap": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def peak_memory(S: int, T: int, B: int, k: int | str, malloc: str) -> dict:
    cmd = [sys.executable, __file__, "--_mem", f"{S},{T},{B},{k}"]
    env = {**os.environ, **MALLOCS[malloc]}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def grads(model, x, k: int | str) -> dict[str, torch.Tensor]:
    model.recompute = k
    train_step(model, x)
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def check_gradients(S: int, T: int, ks: list[int | str]) -> float:
    """The largest |gradient difference| to the plain run over every K (batch 2)."""
    model, x = model_for(S, T, 0), torch.randn(2, T, 3, S, S)
    want = grads(model, x, 0)
    worst = 0.0
    for k in ks:
        got = grads(model, x, k)
        worst = max(worst, max(float((got[n] - want[n]).abs().max()) for n in want))
    return worst


def times(S: int, T: int, B: int, ks: list[int | str], repeat: int) -> tuple[dict, list[int]]:
    """Step times per configuration, and the segment lengths "auto" chose."""
    model, x = model_for(S, T, 0), torch.randn(B, T, 3, S, S)
    out: dict[int | str, list[float]] = {k: [] for k in [0] + ks}
    for k in out:  # warm-up (oneDNN primitives, the first checkpoint's imports, auto's probe)
        model.recompute = k
        train_step(model, x)
    for round_ in range(1, repeat + 1):
        for k in out:
            model.recompute = k
            t = time.perf_counter()
            train_step(model, x)
            out[k].append(time.perf_counter() - t)
        print(f"  round {round_}: " + ", ".join(f"K={k} {v[-1]:.2f}s" for k, v in out.items() if v), flush=True)
    model.recompute = "auto"
    return out, model._segment_lengths(model.loop_start(x), model.idle + T)


def label(k: int | str, auto: list[int]) -> str:
    return "off (plain)" if k == 0 else f"auto ({' + '.join(map(str, auto))})" if k == "auto" else f"K = {k}"


def report(args, mem: dict, timed: dict, auto: list[int], worst: float, cmdline: str) -> str:
    plain_t = statistics.median(timed[0])
    lines = [
        "# Recomputation for BPTT memory: DyRCNNx4 training step",
        "",
        f"`{cmdline}`",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, {cpu_model()}, torch {torch.__version__}, "
        f"{THREADS} threads. DyRCNNx4 (specs/dyrcnn_x4.dyn) at T = {args.steps}, {args.size} px, batch {args.batch}; "
        "one training step = forward + logits.sum().backward(). Peak memory: the rise of the peak resident set "
        "(VmHWM - VmRSS before) during one step, each configuration in a fresh subprocess (speed.py's peak_rise), "
        "after one tiny checkpointed call in every configuration (torch's checkpoint imports torch._dynamo on first "
        "use, ~150 MiB once per process, not counted). Measured twice: with glibc malloc's default dynamic mmap "
        "threshold, where the holes freed intermediates leave in the heap stay resident, and with "
        "MALLOC_MMAP_THRESHOLD_=131072, where every block over 128 KiB is mapped and unmapped on its own and the "
        "resident set follows the live tensors. "
        f"Time: median of {args.repeat} steps per configuration, interleaved round by round after warm-up steps, "
        "in one process.",
        "",
        "| recompute | peak rise, fixed mmap threshold | vs plain | peak rise, default malloc | vs plain "
        "| step time | vs plain |",
        "|---|---|---|---|---|---|---|",
    ]
    fixed, default = mem["mmap"], mem["default"]
    for k in timed:
        t = statistics.median(timed[k])
        name = label(k, auto)
        lines.append(f"| {name} | {fixed[k]['delta']:.0f} MiB | {fixed[k]['delta'] / fixed[0]['delta']:.2f}x "
                     f"| {default[k]['delta']:.0f} MiB | {default[k]['delta'] / default[0]['delta']:.2f}x "
                     f"| {t:.2f} s | {t / plain_t:.2f}x |")
    lines += ["", f"Gradients: every configuration gives the plain run's parameter gradients (largest difference {worst:.1e}, "
              "checked at batch 2, 32 px, 12 steps before timing; tests/test_runtime_loop.py checks K = 1, 3, 5 and auto "
              "to 1e-6).", ""]
    for malloc, how in (("mmap", "with the fixed mmap threshold"), ("default", "with the default malloc")):
        m = mem[malloc]
        best = min((k for k in timed if k), key=lambda k: m[k]["delta"])
        half = [k for k in timed if k and m[k]["delta"] <= m[0]["delta"] / 2]
        lines.append(f"- Target (peak memory at T = {args.steps} at most half the plain run's), {how}: "
                     + (f"met by {', '.join(label(k, auto) for k in half)}" if half else "NOT met")
                     + f"; the lowest peak is {label(best, auto)} ({m[best]['delta']:.0f} MiB, "
                     f"{m[best]['delta'] / m[0]['delta']:.2f}x) at {statistics.median(timed[best]) / plain_t:.2f}x "
                     "the plain step time.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ks", default="1,2,4,5,10,auto", help="segment lengths to measure (comma list; auto: balanced)")
    ap.add_argument("--repeat", type=int, default=5, help="timed steps per configuration")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "recompute.md"))
    ap.add_argument("--_mem", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._mem:
        return mem_worker(args._mem)
    torch.set_num_threads(THREADS)
    ks = [parse_k(k) for k in args.ks.split(",")]
    S, T, B = args.size, args.steps, args.batch
    worst = check_gradients(min(S, 32), min(T, 12), ks)
    print(f"gradients: largest difference to the plain run {worst:.1e}", flush=True)
    mem: dict[str, dict[int, dict]] = {malloc: {} for malloc in MALLOCS}
    for k in [0] + ks:
        for malloc in MALLOCS:
            mem[malloc][k] = peak_memory(S, T, B, k, malloc)
            print(f"  memory K={k} ({malloc} malloc): {mem[malloc][k]['delta']:.0f} MiB", flush=True)
    timed, auto = times(S, T, B, ks, args.repeat)
    cmdline = " ".join(["python", "benchmarks/recompute.py"] + (argv if argv is not None else sys.argv[1:]))
    text = report(args, mem, timed, auto, worst, cmdline)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
