"""Does readable generated code cost time? The standalone module of a spec as emitted at a
given git revision (positional tuples, bare literals) against the current one (StepOutputs
named tuples, `self.NAME` constants), same weights and input, timed alternately in one process.

usage: python benchmarks/codegen_overhead.py [--rev REV] [--spec specs/dyrcnn_x4.dyn] [--repeat 15]
       [--batch 4] [--size 64] [--clock wall|cpu]
Prints the medians and the ratio new / old (< 1 means faster). torch.set_num_threads(2) unless --threads.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _module(source: str, name: str):
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)  # noqa: S102 - modules emitted by this project
    return module


def _emit_at(rev: str, spec: Path, params: dict) -> str:
    """The module `spec` compiles to with the package as it was at `rev` (a worktree-free export)."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import dynvision_dsl as dd; "
            "print(dd.emit(open(sys.argv[2]).read(), params=json.loads(sys.argv[3]), file=sys.argv[2]), end='')")
    tmp = Path(f"/tmp/codegen_overhead_{rev}")
    if not tmp.exists():
        tmp.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "dynvision_dsl"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    import json
    return subprocess.run([sys.executable, "-c", code, str(tmp), str(spec), json.dumps(params)],
                          check=True, capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="758d5fe")
    ap.add_argument("--spec", default="specs/dyrcnn_x4.dyn")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time, less disturbed by other jobs on a loaded machine")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import dynvision_dsl as dd

    spec = Path(args.spec)
    params = {"size": args.size}
    new_src = dd.emit(spec.read_text(), params=params, file=str(spec))
    old_src = _emit_at(args.rev, spec, params)
    cls_name = dd.compile(spec.read_text(), params=params).__class__.__mro__[1].__name__
    torch.manual_seed(0)
    new = getattr(_module(new_src, "new"), cls_name)().eval()
    old = getattr(_module(old_src, "old"), cls_name)().eval()
    old.load_state_dict(new.state_dict())
    x = torch.randn(args.batch, *new.input_shape)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    times = {"old": [], "new": []}
    with torch.no_grad():
        assert torch.equal(old(x), new(x)), "the two modules disagree"
        for _ in range(2):
            old(x), new(x)
        for i in range(args.repeat):
            for label, model in (("old", old), ("new", new)) if i % 2 else (("new", new), ("old", old)):
                start = clock()
                model(x)
                times[label].append(clock() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{spec} b{args.batch} {args.size}px, {new.steps} steps, {args.threads} threads, {args.repeat} interleaved runs each, "
          f"{args.clock} clock")
    print(f"old ({args.rev}): {med['old'] * 1e3:.1f} ms   new: {med['new'] * 1e3:.1f} ms   new/old: {med['new'] / med['old']:.3f}")


if __name__ == "__main__":
    main()
