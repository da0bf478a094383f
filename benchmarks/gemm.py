"""Convolutions onto small output maps as im2col + one matrix product (ops_gemm.gemm_conv).

usage: PYTHONPATH=$PWD python benchmarks/gemm.py [--rounds 9] [--threads 2] [--skip-models] [--out benchmarks/gemm.md]

Times, interleaved in one process with torch.set_num_threads(2) (--threads), medians over rounds:
- per call, the zoo's convolutions onto maps of 2 x 2 to 7 x 7 (CorNetRT, CordsNet, DyRCNNx8
  at 64 px) at batch 1, 4 and 8: F.conv2d (contiguous) against gemm_conv, forward without
  grad and forward + backward (autograd through gemm_conv's ops);
- CorNetRT (5,3,64,64), CordsNet (10,3,64,64) with idle_steps=4 and DyRCNNx8 (10,3,64,64),
  batch 4: forward and training step with the GEMM rewrite (new) and without it (old: those
  convs as nn.Conv2d calls), the same weights;
- for IT.conv2 and IT.conv at batch 4, other ways to build the product (the lead's unfold +
  permute, an NCHW strided im2col).
Writes the tables to --out and prints them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import dynvision_dsl as dd
from dynvision_dsl import layout, lower_layout
from dynvision_dsl.ops_gemm import gemm_conv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from taps import interleaved  # noqa: E402  (one timing loop for both benchmarks)

ROOT = Path(__file__).resolve().parents[1]

GRID = [  # (C, O, input map, k, stride, padding, bias, where): each conv of the zoo onto 2 x 2 .. 7 x 7
    (256, 512, 4, 3, 2, 1, True, "CorNetRT IT.conv"),
    (512, 512, 2, 3, 1, 1, False, "CorNetRT IT.conv2, CordsNet layer8"),
    (256, 256, 4, 3, 1, 1, False, "CorNetRT V4.conv2, CordsNet layer6"),
    (128, 256, 8, 3, 2, 1, True, "CorNetRT V4.conv, CordsNet layer5"),
    (256, 512, 4, 3, 2, 1, False, "CordsNet layer7"),
    (256, 512, 4, 1, 2, 0, False, "CordsNet addskip_layer8"),
    (128, 256, 8, 1, 2, 0, False, "CordsNet addskip_layer6"),
    (256, 256, 2, 3, 1, 1, True, "DyRCNNx8 V4.conv2, V4.recurrence"),
    (144, 256, 4, 3, 2, 1, True, "DyRCNNx8 V4.conv"),
]


def conv_pair(n, c, o, size, k, stride, pad, bias, grad):
    """F.conv2d and gemm_conv on the same numbers (no-argument functions), checked equal."""
    x = torch.randn(n, c, size, size, requires_grad=grad)
    w = torch.randn(o, c, k, k, requires_grad=grad)  # contiguous: how the conv runs on small maps (layout.py)
    w_cl = w.detach().contiguous(memory_format=torch.channels_last).requires_grad_(grad)  # how gemm_conv's is stored
    b = torch.randn(o, requires_grad=grad) if bias else None
    fns = {"conv": lambda: F.conv2d(x, w, b, stride, pad), "gemm": lambda: gemm_conv(x, w_cl, b, stride, pad)}
    torch.testing.assert_close(fns["gemm"](), fns["conv"](), rtol=1e-4, atol=1e-3)
    if grad:
        return {name: (lambda f=f: f().sum().backward()) for name, f in fns.items()}
    return fns


def op_rows(rounds: int) -> list[str]:
    rows = []
    for c, o, size, k, s, p, bias, where in GRID:
        out = (size + 2 * p - k) // s + 1
        cells = []
        for n in (1, 4, 8):
            for grad in (False, True):
                with torch.set_grad_enabled(grad):
                    r = interleaved(conv_pair(n, c, o, size, k, s, p, bias, grad), 3 if grad else 10, rounds)
                cells.append(f"{r['conv']:.0f} / {r['gemm']:.0f}")
        rows.append(f"| [{c},{size},{size}] x [{o},{c},{k},{k}] s{s} -> {out}x{out} | {where} | " + " | ".join(cells) + " |")
    return rows


def _unfold_mm(x, w, stride, pad):
    """The lead's first version: F.unfold, its columns permuted into one [C*k*k, N*L] matrix, mm."""
    n, o = x.shape[0], w.shape[0]
    cols = F.unfold(x, w.shape[2], padding=pad, stride=stride).permute(1, 0, 2).reshape(-1, n * ((x.shape[2] + 2 * pad - w.shape[2]) // stride + 1) ** 2)
    out = torch.mm(w.reshape(o, -1), cols)
    return out.view(o, n, -1).transpose(0, 1)


def _nchw_columns(x, w, stride, pad):
    """im2col from the NCHW input: one copy of a strided view ordered (C, k, k, N, Ho, Wo)."""
    xp = F.pad(x, (pad,) * 4)
    n, c, h, _ = xp.shape
    k, ho = w.shape[2], (xp.shape[2] - w.shape[2]) // stride + 1
    sn, sc, sh, sw = xp.stride()
    cols = xp.as_strided((c, k, k, n, ho, ho), (sc, sh, sw, sn, stride * sh, stride * sw)).reshape(c * k * k, -1)
    return torch.mm(w.reshape(w.shape[0], -1), cols).view(-1, n, ho * ho).transpose(0, 1)


def variant_rows(rounds: int) -> list[str]:
    """Ways to build the product, CorNetRT's IT.conv2 and IT.conv at batch 4 (us per call)."""
    rows = []
    for c, o, size, k, s, p in ((512, 512, 2, 3, 1, 1), (256, 512, 4, 3, 2, 1)):
        x = torch.randn(4, c, size, size, requires_grad=True)
        w = torch.randn(o, c, k, k, requires_grad=True)
        w_cl = w.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
        fns = {"F.conv2d": lambda: F.conv2d(x, w, None, s, p), "unfold + permute + mm": lambda: _unfold_mm(x, w, s, p),
               "NCHW strided im2col + mm": lambda: _nchw_columns(x, w, s, p),
               "gemm_conv": lambda: gemm_conv(x, w_cl, None, s, p)}
        with torch.no_grad():
            fwd = interleaved(fns, 10, rounds)
        both = interleaved({name: (lambda f=f: f().sum().backward()) for name, f in fns.items()}, 3, rounds)
        for name in fns:
            rows.append(f"| [4,{c},{size},{size}] x [{o},{c},{k},{k}] s{s} | {name} | {fwd[name]:.0f} | {both[name]:.0f} |")
    return rows


def compiled_pair(spec: str, params: dict):
    """(old, new): the spec compiled without and with the GEMM rewrite, the same weights."""
    text = (ROOT / "specs" / f"{spec}.dyn").read_text()
    torch.manual_seed(0)
    new = dd.compile(text, params)
    rule = layout.gemm_conv_op
    layout.gemm_conv_op = lower_layout.gemm_conv_op = lambda kind, a, s, o: None
    try:
        old = dd.compile(text, params)
    finally:
        layout.gemm_conv_op = lower_layout.gemm_conv_op = rule
    old.load_state_dict(new.state_dict())
    assert any("gemm_conv(" in st.source for st in new.program.steps), spec
    assert not any("gemm_conv(" in st.source for st in old.program.steps), spec
    return old, new


MODELS = [  # (row name, spec, params, input shape)
    ("CorNetRT (5,3,64,64) b4", "cornet_rt", {"size": 64}, (4, 5, 3, 64, 64)),
    ("CordsNet (10,3,64,64) b4 idle_steps=4", "cordsnet", {"size": 64, "steps": 10, "idle_steps": 4}, (4, 10, 3, 64, 64)),
    ("DyRCNNx8 (10,3,64,64) b4", "dyrcnn_x8", {"size": 64, "steps": 10}, (4, 10, 3, 64, 64)),
]


def _logits(out):
    return out if isinstance(out, torch.Tensor) else torch.cat([v.flatten(1) for v in out.values()], 1)


def model_rows(rounds: int) -> list[str]:
    rows = []
    for name, spec, params, shape in MODELS:
        old, new = compiled_pair(spec, params)
        x = torch.randn(*shape)
        for m in (old, new):
            m.eval()
        with torch.no_grad():
            torch.testing.assert_close(_logits(old(x)), _logits(new(x)), rtol=1e-3, atol=1e-4)
            r = interleaved({"old": lambda: old(x), "new": lambda: new(x)}, 2, rounds)
        rows.append(f"| {name} | forward | {r['old'] / 1e3:.1f} | {r['new'] / 1e3:.1f} | {r['old'] / r['new']:.3f} |")

        def train(m):
            m.zero_grad(set_to_none=True)
            _logits(m(x)).square().mean().backward()
        for m in (old, new):
            m.train()
        r = interleaved({"old": lambda: train(old), "new": lambda: train(new)}, 1, rounds)
        rows.append(f"| {name} | training step | {r['old'] / 1e3:.1f} | {r['new'] / 1e3:.1f} | {r['old'] / r['new']:.3f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-models", action="store_true", help="only the per-call grid")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "gemm.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lines = ["# Convolutions onto small maps as one matrix product (benchmarks/gemm.py)", "",
             f"`PYTHONPATH=$PWD python benchmarks/gemm.py`: torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"medians of {args.rounds} interleaved rounds; load average at the start {os.getloadavg()[0]:.2f} "
             "(on a shared machine these numbers are noisy: compare them side by side only).", "",
             "Per call, us, F.conv2d (contiguous) / gemm_conv:", "",
             "| conv | in | b1 fwd | b1 fwd+bwd | b4 fwd | b4 fwd+bwd | b8 fwd | b8 fwd+bwd |",
             "|---|---|---|---|---|---|---|---|"]
    lines += op_rows(args.rounds)
    lines += ["", "Ways to build it (us per call, batch 4; gemm_conv with its weight channels-last):", "",
              "| conv | way | fwd | fwd+bwd |", "|---|---|---|---|"]
    lines += variant_rows(args.rounds)
    if not args.skip_models:
        lines += ["", "Whole model, old (those convs as nn.Conv2d) vs new (gemm_conv), same weights, ms per call:", "",
                  "| model | run | old | new | old / new |", "|---|---|---|---|---|"]
        lines += model_rows(args.rounds)
    lines += ["", f"Load average at the end: {os.getloadavg()[0]:.2f}."]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
