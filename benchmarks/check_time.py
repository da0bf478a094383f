"""`dynv check` wall time and peak memory, as editors and CI see it (a fresh process each run).

    python benchmarks/check_time.py [SPEC ...] [--repeat 3]

Prints a Markdown table (median wall s, median CPU s, peak RSS MB, whether torch was imported);
the target is <= 1.0 s wall for specs/dyrcnn_x4.dyn (issue 10). Results: benchmarks/check_time.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import json, resource, sys; from dynvision_dsl.cli import main; rc = main(['check', sys.argv[1]]); "
         "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, "
         "'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)")


def once(spec: Path) -> dict:
    """One `dynv check SPEC` in a fresh process: wall and CPU seconds, peak RSS, whether torch loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, str(spec)], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    info = json.loads(out.stderr.strip().splitlines()[-1])
    info.update(wall=wall, cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    return info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="*", default=[str(ROOT / "specs" / "dyrcnn_x4.dyn")])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print("| spec | wall median (s) | CPU median (s) | peak RSS (MB) | torch imported |")
    print("|---|---:|---:|---:|---|")
    for name in args.specs:
        runs = [once(Path(name)) for _ in range(args.repeat)]
        print(f"| {Path(name).name} | {statistics.median(r['wall'] for r in runs):.2f} | "
              f"{statistics.median(r['cpu'] for r in runs):.2f} | {max(r['rss_mb'] for r in runs):.0f} | "
              f"{any(r['torch'] for r in runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
