"""Check and compile time of long chains of areas (targets for 2000 areas:
check <= 4 s, compile <= 20 s).

usage: python benchmarks/large_specs.py [--sizes 500 1000 2000] [--repeat 3]
           [--compare OLD_CHECKOUT [--label TEXT]] [--out benchmarks/large_specs.md]
The spec is generated text: `area A{i} [4] : leaky(tau=2 ms)` and
`A{i} -> A{i+1} : conv(3)`. Each size runs in its own process, single-threaded
(`torch.set_num_threads(1)`); a time is the median of --repeat runs of
`dd.check` (parse, check, schedule) or `dd.compile` (all of that, lowering,
the generated module and its weights). --compare runs the same measurement
on another checkout (e.g. the commit before a change) for a before/after table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"check": 4.0, "compile": 20.0}  # seconds, for 2000 areas

# Runs in a fresh process with the checkout to measure first on sys.path.
_MEASURE = r'''
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
import dynvision_dsl as dd
source, repeat = sys.stdin.read(), int(sys.argv[1])
dd.compile("model W time { dt = 1 ms  steps = 2 } input image [1, 8, 8] area A [1] { r = relu(input) } "
           "image -> A : conv(3) readout A : avgpool | linear(2)")  # warm: lark's tables, torch's first calls
out = {}
stages = (("check", lambda: dd.check(source, file="chain.dyn")), ("compile", lambda: dd.compile(source, file="chain.dyn")))
for stage, run in stages:
    times = []
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        out[stage] = statistics.median(times)
    except Exception as exc:
        out[stage] = f"{type(exc).__name__} after {time.perf_counter() - t:.1f} s"
print(json.dumps(out))
'''


def chain(n: int) -> str:
    """A chain of n leaky areas, each fed by a 3x3 convolution of the one before."""
    lines = ["model Chain", "time { dt = 1 ms  steps = 5 }", "input image [1, 16, 16]",
             "dynamics leaky(tau) {", "  tau * dr/dt = -r + input", "  r = relu(r)", "}"]
    lines += [f"area A{i} [4] : leaky(tau=2 ms)" for i in range(n)]
    lines.append("image -> A0 : conv(3)")
    lines += [f"A{i} -> A{i + 1} : conv(3)" for i in range(n - 1)]
    lines.append(f"readout A{n - 1} : avgpool | linear(2)")
    return "\n".join(lines) + "\n"


def measure(root: Path, n: int, repeat: int) -> dict[str, float | str]:
    """Median seconds of check and compile for a chain of n areas, with `root` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(repeat)], input=chain(n), capture_output=True,
                          text=True, env=env, cwd=root)
    if proc.returncode != 0:
        return {"check": "failed", "compile": "failed: " + proc.stderr.strip().splitlines()[-1][:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cell(value: float | str) -> str:
    return f"{value:.2f} s" if isinstance(value, float) else str(value)


def report(rows: list[tuple[int, dict, dict | None]], repeat: int, load: tuple, compare: str | None) -> str:
    head = ["areas", "check", "compile"] + (["check before", "compile before"] if compare else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, now, before in rows:
        cells = [str(n), _cell(now["check"]), _cell(now["compile"])]
        if compare:
            cells += [_cell(before["check"]), _cell(before["compile"])]
        lines.append("| " + " | ".join(cells) + " |")
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    notes = [f"Median of {repeat} runs, each size in its own process, `torch.set_num_threads(1)`; {machine}.",
             f"Load average (1, 5, 15 min) at the start: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}"
             f" (other jobs share the machine: times are upper bounds)."]
    if compare:
        notes.append(f"'before' is the same measurement on {compare}.")
    targets = ", ".join(f"{k} <= {v:g} s" for k, v in TARGETS.items())
    return ("# Long chains of areas: check and compile time\n\n"
            f"`python benchmarks/large_specs.py`. Targets for 2000 areas: {targets}.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", help="another checkout of the project to measure the same way")
    ap.add_argument("--label", help="how the report names the --compare checkout (default: its path)")
    ap.add_argument("--out", type=Path, help="write the markdown report here")
    args = ap.parse_args()
    load = os.getloadavg()
    rows = []
    for n in args.sizes:
        now = measure(ROOT, n, args.repeat)
        before = measure(Path(args.compare).resolve(), n, args.repeat) if args.compare else None
        rows.append((n, now, before))
        print(n, now, before if before else "", flush=True)
    text = report(rows, args.repeat, load, args.label or args.compare)
    print(text)
    if args.out:
        args.out.write_text(text)
    slow = [k for n, now, _ in rows if n == 2000 for k, v in now.items() if not isinstance(v, float) or v > TARGETS[k]]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
