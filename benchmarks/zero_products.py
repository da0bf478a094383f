"""CorNetRT forward with and without the fold_zero_products pass, side by side in one process.

usage:

    PYTHONPATH=$PWD python benchmarks/zero_products.py [--repeat 30] [--size 64] [--steps 5] [--batch 4]

Compiles specs/cornet_rt.dyn twice (the second time with fold_zero_products left out of the
pipeline), loads one state dict into both, checks their logits agree, then times no-grad
forwards of both alternately (torch.set_num_threads(2), medians after warm-up calls, and the
median of each alternating pair's ratio, which a drifting load on a shared machine moves less).
Then counts, for each step of a run, the module calls (convolutions, normalisations) that the
logits of the last step still need, walking the step graphs backwards through the delayed reads
and states: what a tail-pruned run would compute, with and without the pass. Writes
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
import torch.fx as fx

import dynvision_dsl as dd
from dynvision_dsl import lower
from dynvision_dsl.backend.passes import pipeline
from dynvision_dsl.pipeline import build

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


def _source_output(outputs: list, source: str) -> int | None:
    """The index in a step's outputs of what a ring of `source` holds (None for an input)."""
    keys = [("out", source)] if "." not in source else [("state", source), ("var", source)]
    return next((i for i, o in enumerate(outputs) if o in keys), None)


def _live(graph: fx.Graph, wanted: set[int]) -> set[fx.Node]:
    """The nodes the outputs at `wanted` depend on."""
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    live, stack = set(), [out[i] for i in wanted if isinstance(out[i], fx.Node)]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(n.all_input_nodes)
    return live


def tail_modules(program, steps: int) -> list[int]:
    """Per step of a `steps`-step run, the module calls the last step's logits need (a tail-pruned run's)."""
    s, outputs = program.schedule, program.outputs
    need = {steps - 1: {i for i, (kind, _) in enumerate(outputs) if kind == "logits"}}
    reads = {lower.read_name(r): r for r in s.reads}
    states = {lower.state_name(a, v): outputs.index(("state", f"{a}.{v}")) for a, v in s.state_keys}
    counts = []
    for t in range(steps - 1, -1, -1):
        live = _live(program.steps[s.variant(t)].graph, need.get(t, set()))
        counts.append(sum(n.op == "call_module" for n in live))
        for p in (n for n in live if n.op == "placeholder"):
            r = reads.get(p.target)
            at, index = (t - r.delay, _source_output(outputs, r.source)) if r else (t - 1, states.get(p.target))
            if index is not None and at >= 0:
                need.setdefault(at, set()).add(index)
    return counts[::-1]


def tail_counts(size: int, steps: int) -> dict:
    """tail_modules of CorNetRT with and without the pass, and the module calls of a whole run."""
    source = (ROOT / "specs" / "cornet_rt.dyn").read_text()
    params = {"size": size, "steps": steps, "classes": 10}
    folded, _ = build(source, params)
    with mock.patch.object(lower, "pipeline", without_pass):
        plain, _ = build(source, params)
    s = folded.schedule
    full = [sum(n.op == "call_module" for n in folded.steps[s.variant(t)].graph.nodes) for t in range(steps)]
    return {"full": full, "with": tail_modules(folded, steps), "without": tail_modules(plain, steps)}


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
        "## What tail pruning could leave out", "",
        "Module calls (convolutions, normalisations) per step of the run: all of them, and those the last "
        "step's logits need (walking the step graphs back through delayed reads and states), with and "
        "without the pass. A static count from the step graphs, not a timing.", "",
        "| | " + " | ".join(f"step {t}" for t in range(len(r["tail"]["full"]))) + " | total |",
        "|---|" + "---|" * (len(r["tail"]["full"]) + 1),
        *(f"| {label} | " + " | ".join(map(str, r["tail"][key])) + f" | {sum(r['tail'][key])} |"
          for label, key in (("every module call", "full"), ("needed, without fold_zero_products", "without"),
                             ("needed, with fold_zero_products", "with"))), ""])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args(argv)
    result = measure(args.repeat, args.size, args.steps, args.batch)
    result["tail"] = tail_counts(args.size, args.steps)
    text = report(result)
    (ROOT / "benchmarks" / "zero_products.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
