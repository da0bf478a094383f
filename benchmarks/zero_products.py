"""CorNetRT forward with and without the fold_zero_products pass, side by side in one process.

usage:

    PYTHONPATH=$PWD python benchmarks/zero_products.py [--repeat 30] [--size 64] [--steps 5] [--batch 4]

Compiles specs/cornet_rt.dyn twice (the second time with fold_zero_products left out of the
pipeline), loads one state dict into both, checks their logits agree, then times no-grad
forwards of both alternately (torch.set_num_threads(2), medians after warm-up calls, and the
median of each alternating pair's ratio, which a drifting load on a shared machine moves less).
Then counts, for each step of a run, the module calls (convolutions, normalisations) it makes:
recording V1 (every step whole) and recording nothing (the tail variants of the last steps leave
out what no later output needs), with and without the pass. Writes
benchmarks/zero_products.md and prints the same text.
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path
from unittest import mock

import torch

import dynvision_dsl as dd
from dynvision_dsl import lower
from dynvision_dsl.backend.passes import pipeline

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2
PASS = "fold_zero_products"


def without_pass(optimize: bool = True):
    """The pipeline less fold_zero_products."""
    return tuple(p for p in pipeline(optimize) if p.name != PASS)


def build_pair(size: int, steps: int):
    """(with the pass, without it): CorNetRT at size x size, `steps` steps, 10 classes, one state dict."""
    params = {"size": size, "steps": steps, "classes": 10}
    spec = ROOT / "specs" / "cornet_rt.dyn"
    torch.manual_seed(0)
    folded = dd.compile_file(spec, params).eval()
    with mock.patch.object(lower, "pipeline", without_pass):
        plain = dd.compile_file(spec, params).eval()
    plain.load_state_dict(folded.state_dict())
    return folded, plain


def _time(model, x) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def measure(repeat: int, size: int, steps: int, batch: int) -> dict:
    torch.set_num_threads(THREADS)
    folded, plain = build_pair(size, steps)
    assert folded.code.count("0.0 *") < plain.code.count("0.0 *"), "the pass folded nothing"
    x = torch.rand(batch, steps, 3, size, size)
    times = {"with": [], "without": []}
    with torch.no_grad():
        diff = float((folded(x) - plain(x)).abs().max())
        for _ in range(3):
            folded(x), plain(x)
        for i in range(repeat):
            pair = (("with", folded), ("without", plain)) if i % 2 == 0 else (("without", plain), ("with", folded))
            for name, model in pair:
                times[name].append(_time(model, x))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    pair = statistics.median(b / a for a, b in zip(times["with"], times["without"]))  # robust to load drift
    return {"med": med, "pair": pair, "diff": diff, "repeat": repeat, "shape": (steps, 3, size, size), "batch": batch,
            "products": (plain.code.count("0.0 *"), folded.code.count("0.0 *"))}


def executed_calls(model, x, record=()) -> list[int]:
    """Per step of one run, the module calls (convolutions, normalisations) it made: forward
    hooks on every leaf module, steps told apart by wrapping the model's step functions."""
    counts: list[int] = []

    def count(*_):
        counts[-1] += 1
    leaves = [m for m in model.modules() if m is not model and not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    for name in set(model.step_names):
        step = getattr(model, name)
        setattr(model, name, lambda *a, _step=step: counts.append(0) or _step(*a))
    try:
        with torch.no_grad():
            model.simulate(x, record=record)
    finally:
        for name in set(model.step_names):
            delattr(model, name)
        for h in hooks:
            h.remove()
    return counts


def tail_counts(folded, plain, x) -> dict:
    """executed_calls of a run that records V1 (every step whole) and of runs that record nothing
    (the tail variants leave work out), with and without the pass."""
    return {"full": executed_calls(folded, x, ["V1"]), "with": executed_calls(folded, x),
            "without": executed_calls(plain, x)}


def report(r: dict) -> str:
    med = r["med"]
    return "\n".join([
        "# fold_zero_products: CorNetRT forward with and without the pass", "",
        f"{datetime.date.today()}, `PYTHONPATH=$PWD python benchmarks/zero_products.py --repeat {r['repeat']}`; "
        f"input {r['shape']} batch {r['batch']}, no grad, {THREADS} threads, the two builds alternating in one "
        f"process, medians of {r['repeat']} forwards each (shared machine: compare the ratio only).", "",
        "| build | ms / forward |", "|---|---|",
        f"| without fold_zero_products | {med['without']:.2f} |",
        f"| with fold_zero_products | {med['with']:.2f} |",
        f"| ratio of the medians (without / with) | {med['without'] / med['with']:.3f}x |",
        f"| median of the per-pair ratios | {r['pair']:.3f}x |", "",
        f"`0.0 *` in the generated module: {r['products'][0]} without the pass, {r['products'][1]} with it "
        f"(the lone gate terms of the first step stay); largest logit difference {r['diff']:.2e}.", "",
        "## What the tail variants leave out", "",
        "Module calls (convolutions, normalisations) made per step of one run (forward hooks): a run "
        "that records V1 (every step whole), and runs that record nothing, whose last steps run the tail "
        "variants (backend/tail.py), with and without the pass.", "",
        "| | " + " | ".join(f"step {t}" for t in range(len(r["tail"]["full"]))) + " | total |",
        "|---|" + "---|" * (len(r["tail"]["full"]) + 1),
        *(f"| {label} | " + " | ".join(map(str, r["tail"][key])) + f" | {sum(r['tail'][key])} |"
          for label, key in (("recording V1: every step whole", "full"),
                             ("tail variants, without fold_zero_products", "without"),
                             ("tail variants, with fold_zero_products", "with"))), ""])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args(argv)
    result = measure(args.repeat, args.size, args.steps, args.batch)
    folded, plain = build_pair(args.size, args.steps)
    result["tail"] = tail_counts(folded, plain, torch.rand(args.batch, args.steps, 3, args.size, args.size))
    text = report(result)
    (ROOT / "benchmarks" / "zero_products.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
