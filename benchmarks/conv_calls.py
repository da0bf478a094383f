"""Per-conv call counts and times: compiled specs vs their DynVision 0.1.0 classes.

usage (with the reference venv, which also imports dynvision_dsl):

    PYTHONPATH=$PWD .venv-reference/bin/python benchmarks/conv_calls.py [--models cornet_rt] [--repeat 20]

Times every nn.Conv2d call (its `_conv_forward`, wall clock around the op) of both models
while they run no-grad forwards alternately in one process (torch.set_num_threads(2)), and
writes, per conv shape, how many calls each model makes per forward, the median time of a
call, and the conv time per forward. It answers whether a model is slower or faster per conv
or because it runs a different number of convs (the bound a model's ratio can reach with
equal per-call times). Writes benchmarks/conv_calls.md and prints the same text.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import THREADS, cpu_model, matched_pair  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"cornet_rt": (64, 5, 4), "cordsnet": (64, 10, 4), "x8": (64, 10, 4), "x4": (64, 20, 8), "x2": (64, 20, 8)}


def timed_convs(models: dict, x: torch.Tensor, repeat: int) -> tuple[dict, dict]:
    """Conv call times keyed by (model, input shape, weight shape), and whole forward times."""
    calls, forwards = collections.defaultdict(list), collections.defaultdict(list)
    current = [""]
    original = torch.nn.Conv2d._conv_forward

    def conv_forward(self, inp, weight, bias):
        start = time.perf_counter()
        out = original(self, inp, weight, bias)
        calls[current[0], tuple(inp.shape), tuple(weight.shape)].append(time.perf_counter() - start)
        return out
    torch.nn.Conv2d._conv_forward = conv_forward
    try:
        for round_ in range(repeat + 2):
            for name, model in models.items():
                current[0] = name if round_ >= 2 else "warm-up"
                start = time.perf_counter()
                with torch.no_grad():
                    model(x)
                if round_ >= 2:
                    forwards[name].append(time.perf_counter() - start)
    finally:
        torch.nn.Conv2d._conv_forward = original
    calls = {key: v for key, v in calls.items() if key[0] != "warm-up"}
    return calls, forwards


def table(short: str, calls: dict, forwards: dict, repeat: int) -> list[str]:
    ref, comp = (statistics.median(forwards[n]) * 1e3 for n in ("reference", "compiled"))
    lines = [f"## {short}", "", f"Forward medians: reference {ref:.2f} ms, compiled {comp:.2f} ms, "
             f"ratio {ref / comp:.2f}x.", "",
             "| input | weight | calls/fwd ref | calls/fwd ours | us/call ref | us/call ours | ms/fwd ref | ms/fwd ours |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    shapes = sorted({key[1:] for key in calls}, key=lambda s: (s[1], s[0]))
    total = {"reference": 0.0, "compiled": 0.0}
    for shape in shapes:
        row = []
        for name in ("reference", "compiled"):
            times = calls.get((name,) + shape, [])
            total[name] += sum(times) / repeat
            row.append((len(times) / repeat, statistics.median(times) * 1e6 if times else 0.0, sum(times) / repeat * 1e3))
        lines.append(f"| {list(shape[0])} | {list(shape[1])} | {row[0][0]:g} | {row[1][0]:g} | {row[0][1]:.0f} "
                     f"| {row[1][1]:.0f} | {row[0][2]:.2f} | {row[1][2]:.2f} |")
    conv_ref, conv_comp = total["reference"] * 1e3, total["compiled"] * 1e3
    n_ref, n_comp = (sum(len(v) for k, v in calls.items() if k[0] == n) / repeat for n in ("reference", "compiled"))
    lines += ["", f"Conv time per forward: reference {conv_ref:.2f} ms in {n_ref:g} calls, compiled {conv_comp:.2f} ms "
              f"in {n_comp:g} calls; the rest: reference {ref - conv_ref:.2f} ms, compiled {comp - conv_comp:.2f} ms. "
              "A convolution the compiled model runs as matrix products (onto a 1 x 1 map the taps it reads, onto "
              "a small map im2col and one product: layout.py) is no nn.Conv2d call: it counts 0 calls here and "
              "its time is in the rest.", ""]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cornet_rt", help=f"comma list of {', '.join(SHAPES)}")
    ap.add_argument("--repeat", type=int, default=20, help="timed forwards per model (after two warm-up rounds)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "conv_calls.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(THREADS)
    cmdline = " ".join(["PYTHONPATH=$PWD .venv-reference/bin/python benchmarks/conv_calls.py"]
                       + (argv if argv is not None else sys.argv[1:]))
    lines = ["# Conv calls per forward: compiled specs vs DynVision 0.1.0", "", f"`{cmdline}`", "",
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, {cpu_model()}, torch "
             f"{torch.__version__}, {THREADS} threads, no-grad forwards alternating in one process; every "
             "nn.Conv2d call timed around the op (both models pay the same wrapper).", ""]
    for short in args.models.split(","):
        S, T, B = SHAPES[short]
        row: dict = {}
        ref, comp = matched_pair(short, S, T, B, row)
        if ref is None:
            raise SystemExit(f"{short}: the compiled model's logits do not match the reference's")
        if row.get("redrawn"):
            lines += [f"{short}: with the weights speed.py times (run_reference.redraw; the constructor's "
                      "disagree), both models.", ""]
        x = torch.randn(B, T, 3, S, S)
        calls, forwards = timed_convs({"reference": ref, "compiled": comp}, x, args.repeat)
        lines += table(f"{short} ({T}, 3, {S}, {S}) batch {B}", calls, forwards, args.repeat)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
