"""Per-op forward profiles of compiled zoo specs vs their DynVision 0.1.0 classes.

usage (with the reference venv, which also imports dynvision_dsl):

    PYTHONPATH=$PWD .venv-reference/bin/python benchmarks/profiles.py [--models x8,cordsnet,cornet_rt,x4,x2]
        [--repeat 5] [--rows 12] [--threads 2] [--out benchmarks/profiles.md]

For every model, at the issue-12 configurations (64 px, batch 4; T = 10, CorNetRT T = 5,
CordsNet with 4 idle steps): build both models with the same weights (speed.py), time
their forwards alternately (torch.set_num_threads(2), medians), then record one forward
of each under torch.profiler (record_shapes) and write the top ops by self CPU time,
grouped by input shape, with a breakdown of self CPU time by op category.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

# not named profile.py: run as a script, its folder is first on sys.path, where a profile.py
# would shadow the standard library's (which torch._dynamo imports through cProfile)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402


CONFIGS = {"x2": (64, 10, 4), "x4": (64, 10, 4), "x8": (64, 10, 4), "cordsnet": (64, 10, 4), "cornet_rt": (64, 5, 4)}

# op-name substrings -> category; the first match wins (self CPU time is summed per category)
CATEGORIES = (
    ("weight norm", ("_weight_norm", "aten::norm", "linalg_vector_norm")),
    ("convolution", ("convolution", "conv2d", "mkldnn_conv")),
    ("linear", ("addmm", "aten::mm", "aten::linear", "aten::matmul")),
    ("normalisation", ("group_norm", "batch_norm", "layer_norm")),
    ("layout / copy", ("copy_", "contiguous", "clone", "aten::to", "_to_copy", "empty_strided")),
    ("pooling", ("pool",)),
    ("elementwise", ("add", "sub", "mul", "div", "relu", "lerp", "sigmoid", "tanh", "exp", "where",
                     "clamp", "neg", "pow", "abs", "sign", "maximum", "minimum")),
)


def category(name: str) -> str:
    """The category of one profiler op name (CATEGORIES; 'other' when none matches)."""
    for label, keys in CATEGORIES:
        if any(k in name for k in keys):
            return label
    return "other"


def interleaved(ref, ours, x, repeat: int) -> tuple[list[float], list[float]]:
    """Forward times of the two models, alternating, after one warm-up call each."""
    tr, to = [], []
    for i in range(repeat + 1):
        a = speed.timed(speed.fwd, ref, x)
        b = speed.timed(speed.fwd, ours, x)
        if i:
            tr.append(a)
            to.append(b)
    return tr, to


def record(model, x):
    """One profiled no-grad forward (after the timing runs warmed it)."""
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        model(x)
    return p


def breakdown(prof) -> tuple[float, dict[str, tuple[float, int]]]:
    """Total self CPU (ms) and, per category, (self CPU ms, calls)."""
    cats: dict[str, list] = {}
    total = 0.0
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1e3
        total += ms
        c = cats.setdefault(category(ev.key), [0.0, 0])
        c[0] += ms
        c[1] += ev.count
    return total, {k: (v[0], v[1]) for k, v in sorted(cats.items(), key=lambda kv: -kv[1][0])}


def top_table(prof, rows: int) -> list[str]:
    """Markdown rows: op, input shapes, calls, self CPU total and per call."""
    evs = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    out = ["| op | input shapes | calls | self CPU ms | per call us |", "|---|---|---:|---:|---:|"]
    for e in evs[:rows]:
        shapes = str(e.input_shapes).replace("|", "/")
        shapes = shapes if len(shapes) <= 90 else shapes[:87] + "..."
        out.append(f"| {e.key} | {shapes} | {e.count} | {e.self_cpu_time_total / 1e3:.2f} | "
                   f"{e.self_cpu_time_total / max(e.count, 1):.0f} |")
    return out


def summary(label: str, total: float, cats: dict) -> str:
    """One sentence: where `label`'s self CPU time goes, by category."""
    parts = [f"{k} {v[0] / total:.0%} ({v[1]} calls)" for k, v in cats.items() if v[0] / total >= 0.02]
    return f"{label}: {total:.0f} ms self CPU; " + ", ".join(parts) + "."


def profile_model(short: str, repeat: int, rows: int) -> list[str]:
    """The markdown section of one model."""
    S, T, B = CONFIGS[short]
    torch.manual_seed(0)
    ref = speed.build_reference(short, S, T)
    speed.warm_reference(ref, S, T)
    ours = speed.compile_model(short, S, T)
    ours.load_dynvision(ref.state_dict())
    ok, err = speed.check(ref, ours, S, T, 2)
    if not ok:  # as speed.py: CorNetRT's reference agrees only with re-drawn weights
        sys.path.insert(0, str(speed.ROOT / "benchmarks" / "reference"))
        from run_reference import redraw

        redraw(ref, 0)
        ours.load_dynvision(ref.state_dict())
        ok, err = speed.check(ref, ours, S, T, 2)
    x = torch.randn(B, T, 3, S, S, generator=torch.Generator().manual_seed(1))
    tr, to = interleaved(ref, ours, x, repeat)
    mr, mo = statistics.median(tr), statistics.median(to)
    name = speed.ZOO[short][0]
    lines = [f"## {name} ({T}, 3, {S}, {S}) batch {B}" + (", 4 idle steps" if short == "cordsnet" else ""), "",
             f"Logits agree: {ok} (max |diff| {err:.2g}). Forward, {len(tr)} interleaved calls, medians: "
             f"reference {mr * 1e3:.0f} ms, compiled {mo * 1e3:.0f} ms, ratio {mr / mo:.2f}x.", ""]
    for label, model in (("reference", ref), ("compiled", ours)):
        prof = record(model, x)
        total, cats = breakdown(prof)
        lines += [f"### {label}", "", summary(label.capitalize(), total, cats), ""] + top_table(prof, rows) + [""]
    print("\n".join(lines), flush=True)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="x8,cordsnet,cornet_rt,x4,x2")
    ap.add_argument("--repeat", type=int, default=5, help="timed forwards per model (after one warm-up)")
    ap.add_argument("--rows", type=int, default=12, help="ops per table")
    ap.add_argument("--threads", type=int, default=speed.THREADS,
                    help="torch threads (2, the targets' setting; 1 on a loaded machine, where 2 threads "
                         "oversubscribe the cores and time scheduling, not ops)")
    ap.add_argument("--out", default=str(speed.ROOT / "benchmarks" / "profiles.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shorts = [speed.ALIASES.get(s, s) for s in args.models.split(",")]
    cmd = "PYTHONPATH=$PWD .venv-reference/bin/python benchmarks/profiles.py " + " ".join(argv or sys.argv[1:])
    lines = ["# Forward profiles: compiled specs vs DynVision 0.1.0", "",
             f"`{cmd.strip()}` on {datetime.date.today()}, {speed.cpu_model()}, torch {torch.__version__}, "
             f"{args.threads} thread{'s' * (args.threads != 1)}, load average {os.getloadavg()[0]:.1f} at the start. Self CPU time per op (torch.profiler, one no-grad forward each, "
             "after the timed calls), top ops grouped by input shape; categories sum self CPU time by op name "
             "(`CATEGORIES` in the script). Times from a shared machine: ratios are indicative, the "
             "tables show where the time goes.", ""]
    for short in shorts:
        lines += profile_model(short, args.repeat, args.rows)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
