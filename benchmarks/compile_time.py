"""Parse-to-module time for every spec (target: <= 0.3 s each).

usage: python benchmarks/compile_time.py [--repeat N] [--out benchmarks/compile_time.md]
Cold = the first compile in a fresh process, after importing the package and
its back end (torch: `import dynvision_dsl` no longer loads it, so that checking
stays torch-free); warm = median of N further compiles; "compiler" = parse to generated
source, the rest of a compile is torch building and initialising the weights.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def specs() -> list[Path]:
    found = sorted((ROOT / "specs").glob("*.dyn"))
    shared = ROOT.parent / "shared" / "examples"
    if shared.exists():
        found += sorted(shared.glob("*.dyn"))
    return found


def cold(path: Path) -> float:
    code = ("import time, dynvision_dsl as dd, pathlib\n"
            "import dynvision_dsl.lower, dynvision_dsl.model, dynvision_dsl.render  # the back end: torch\n"
            f"p = pathlib.Path({str(path)!r})\n"
            "t = time.perf_counter(); dd.compile(p.read_text(), file=str(p)); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def warm(path: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of a whole compile, and of its compiler part (parse to
    generated source, without building and initialising the weights)."""
    import dynvision_dsl as dd
    from dynvision_dsl.render import render
    from dynvision_dsl.pipeline import build

    text = path.read_text()
    dd.compile(text, file=str(path))
    whole, front = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        dd.compile(text, file=str(path))
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        render(build(text, file=str(path))[0])
        front.append(time.perf_counter() - t)
    return statistics.median(whole), statistics.median(front)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    rows = ["| spec | parameters | cold (s) | warm median (s) | of which compiler (s) | target 0.3 s |",
            "|---|---:|---:|---:|---:|---|"]
    ok = True
    import dynvision_dsl as dd

    for path in specs():
        c, (w, f) = cold(path), warm(path, args.repeat)
        n = sum(p.numel() for p in dd.compile(path.read_text(), file=str(path)).parameters())
        met = max(c, w) <= TARGET_S
        ok &= met
        name = path.relative_to(ROOT.parent) if ROOT.parent in path.parents else path
        rows.append(f"| {name} | {n:,} | {c:.3f} | {w:.3f} | {f:.3f} | {'met' if met else 'MISSED'} |")
    header = (f"Parse-to-module time, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"torch {torch.__version__}, median of {args.repeat} warm runs.\n")
    text = header + "\n" + "\n".join(rows) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
