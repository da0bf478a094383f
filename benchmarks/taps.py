"""Convolutions onto a 1 x 1 map as matrix products over the taps they read (layout.tap_window).

usage: PYTHONPATH=$PWD python benchmarks/taps.py [--rounds N] [--threads 2] [--out benchmarks/taps.md]

Times, interleaved in one process with torch.set_num_threads(2) (--threads), medians over rounds:
- per op class: the conv, a linear with a ready tap matrix (built once), the same linear
  slicing and reshaping the weight per call (a copy of the taps read), and
  ops_window.window_linear (one unit-stride product per kernel row of the channels-last
  weight), forward and forward + backward; a same-size conv on a 2 x 2 map against the dense
  matrix it equals (prebuilt, and built per call);
- DyRCNNx8 at (10, 3, 64, 64) b4, forward and a training step, with the window rewrite
  (new) and without it (old: IT.conv as a conv), the same weights.
Writes the tables to --out and prints them.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl import layout, lower_layout
from dynvision_dsl.ops_window import window_linear

ROOT = Path(__file__).resolve().parents[1]


def interleaved(fns: dict, calls: int, rounds: int) -> dict[str, float]:
    """Median microseconds per call of each function, timed in turn every round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            f()
            t = time.perf_counter()
            for _ in range(calls):
                f()
            times[name].append((time.perf_counter() - t) / calls * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def window_ops(n, c, o, size, k, stride, pad, dilation=1, grad=False):
    """The four ways to compute one conv onto a 1 x 1 map, each a no-argument function."""
    a = {"k": k, "padding": pad, "dilation": dilation}
    win = layout.tap_window(a, (c, size, size), (o, 1, 1))
    (r0, r1), (c0, c1), (i, j), d = win.rows, win.cols, win.at, win.dilation
    x = torch.randn(n, c, size, size, requires_grad=grad)
    w = torch.randn(o, c, k, k).contiguous(memory_format=torch.channels_last).requires_grad_(grad)
    b = torch.randn(o, requires_grad=grad)
    pix = (slice(None), slice(None), slice(i, i + d * (r1 - r0 - 1) + 1, d), slice(j, j + d * (c1 - c0 - 1) + 1, d))
    ready = w.detach()[:, :, r0:r1, c0:c1].reshape(o, -1).clone().requires_grad_(grad)
    fns = {
        "conv": lambda: F.conv2d(x, w, b, stride, pad, dilation),
        "ready matrix": lambda: F.linear(x[pix].flatten(1), ready, b),
        "weight sliced per call": lambda: F.linear(x[pix].flatten(1), w[:, :, r0:r1, c0:c1].reshape(o, -1), b),
        "window_linear": lambda: window_linear(x, w, b, win.rows, win.cols, win.at, win.dilation),
    }
    want = fns["conv"]().detach()
    for f in fns.values():
        torch.testing.assert_close(f().detach().reshape(want.shape), want, rtol=1e-4, atol=1e-3)
    if grad:
        return {name: (lambda f=f: f().sum().backward()) for name, f in fns.items()}, win
    return fns, win


def dense_ops(n, c, size, k, pad):
    """A same-size conv on a size x size map against the dense matrix it equals."""
    x = torch.randn(n, c, size, size)
    w = torch.randn(c, c, k, k)
    b = torch.randn(c)
    # tap index of (output pixel p, input pixel q), or k*k (a zero) where no tap links them
    pix = [(y, z) for y in range(size) for z in range(size)]
    idx = torch.tensor([[(qy - py + pad) * k + (qz - pz + pad) if 0 <= qy - py + pad < k and 0 <= qz - pz + pad < k
                         else k * k for (qy, qz) in pix] for (py, pz) in pix])

    def build():
        flat = torch.cat([w.reshape(c, c, k * k), w.new_zeros(c, c, 1)], 2)  # [O, C, taps + zero]
        return flat[:, :, idx].permute(0, 2, 1, 3).reshape(c * size * size, c * size * size)  # [(O,p), (C,q)]

    matrix = build()
    bias = b.repeat_interleave(size * size)
    fns = {"conv": lambda: F.conv2d(x, w, b, 1, pad),
           "dense prebuilt": lambda: F.linear(x.flatten(1), matrix, bias),
           "dense built per call": lambda: F.linear(x.flatten(1), build(), bias)}
    want = fns["conv"]().flatten(1)
    for f in fns.values():
        torch.testing.assert_close(f().reshape(want.shape), want, rtol=1e-4, atol=1e-3)
    return fns


def _multi_tap_off(monkeypatch_target=(layout, lower_layout)):
    """Turn the window rewrite off for convolutions reading several taps (the centre tap stays)."""
    original = layout.op_tap

    def old(kind, a, s, o):
        found = original(kind, a, s, o)
        return found if found is None or found[1].taps == 1 else None
    for module in monkeypatch_target:
        module.op_tap = old
    return lambda: [setattr(m, "op_tap", original) for m in monkeypatch_target]


def x8_models():
    """(old, new) DyRCNNx8 at 64 px, 10 steps, with the same weights."""
    text = (ROOT / "specs" / "dyrcnn_x8.dyn").read_text()
    params = {"size": 64, "steps": 10, "classes": 10}
    torch.manual_seed(0)
    new = dd.compile(text, params)
    restore = _multi_tap_off()
    try:
        old = dd.compile(text, params)
    finally:
        restore()
    old.load_state_dict(new.state_dict())
    assert "window_linear(" in new.program.steps[-1].source
    assert "window_linear(" not in old.program.steps[-1].source
    return old, new


def model_rows(rounds: int) -> list[str]:
    old, new = x8_models()
    x = torch.randn(4, 10, 3, 64, 64)
    rows = []
    for m in (old, new):
        m.eval()
    with torch.no_grad():
        torch.testing.assert_close(old(x), new(x), rtol=1e-4, atol=1e-5)
        r = interleaved({"old": lambda: old(x), "new": lambda: new(x)}, 3, rounds)
    rows.append(f"| DyRCNNx8 forward (10,3,64,64) b4 | {r['old'] / 1e3:.1f} | {r['new'] / 1e3:.1f} | {r['old'] / r['new']:.3f} |")

    def train(m):
        m.zero_grad(set_to_none=True)
        m(x).square().mean().backward()
    for m in (old, new):
        m.train()
    r = interleaved({"old": lambda: train(old), "new": lambda: train(new)}, 1, rounds)
    rows.append(f"| DyRCNNx8 training step (10,3,64,64) b4 | {r['old'] / 1e3:.1f} | {r['new'] / 1e3:.1f} | {r['old'] / r['new']:.3f} |")
    return rows


CASES = [  # (batch, C, O, map, k, stride, padding, dilation): DyRCNNx8's IT.conv first
    (4, 256, 529, 2, 3, 2, 1, 1), (1, 256, 529, 2, 3, 2, 1, 1), (8, 256, 529, 2, 3, 2, 1, 1),
    (4, 128, 256, 3, 3, 1, 0, 1), (4, 64, 128, 4, 5, 2, 1, 1), (4, 64, 128, 5, 3, 4, 1, 2),
]


def op_rows(rounds: int) -> list[str]:
    rows = []
    for grad in (False, True):
        for n, c, o, size, k, s, p, d in CASES:
            fns, win = window_ops(n, c, o, size, k, s, p, d, grad)
            with torch.set_grad_enabled(grad):
                r = interleaved(fns, 5 if grad else 20, rounds)
            shape = f"[{n},{c},{size},{size}] x [{o},{c},{k},{k}] s{s} p{p} d{d}, {win.taps} taps"
            rows.append(f"| {shape} | {'fwd+bwd' if grad else 'fwd'} | " + " | ".join(f"{v:.0f}" for v in r.values()) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "taps.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lines = ["# Convolutions onto a 1 x 1 map (benchmarks/taps.py)", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, medians of {args.rounds} interleaved rounds, us per call.", "",
             "| op | pass | conv | ready matrix | weight sliced per call | window_linear |", "|---|---|---|---|---|---|"]
    lines += op_rows(args.rounds)
    lines += ["", "Same-size conv on a 2 x 2 map against the dense matrix it equals (us per call):", "",
              "| op | conv | dense prebuilt | dense built per call |", "|---|---|---|---|"]
    for n, c in ((4, 512), (4, 256)):
        with torch.no_grad():
            r = interleaved(dense_ops(n, c, 2, 3, 1), 10, args.rounds)
        lines.append(f"| [{n},{c},2,2] x [{c},{c},3,3] p1 | " + " | ".join(f"{v:.0f}" for v in r.values()) + " |")
    lines += ["", "Whole model, old (IT.conv a conv) vs new (window_linear), same weights (ms per call):", "",
              "| run | old | new | old / new |", "|---|---|---|---|"]
    lines += model_rows(args.rounds)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
