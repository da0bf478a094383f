"""Streaming data benchmark: does `dynv train --data folder:PATH` stay small and keep up with the model?

usage:

    python benchmarks/data_loading.py [--images 40000] [--workers 2] [--batch 16] [--steps 16] [--rounds 3] [--dir DIR]

1. Writes IMAGES 64x64 RGB PNGs in 10 class folders (noise with a class tint: noise
   compresses badly, so decoding costs more than for photographs) and a small held-out
   folder, with a multiprocessing pool, in a temporary folder (or --dir, kept).
2. Alternates, ROUNDS times, two fresh subprocesses:
   - stream: `dynv train SPEC --data folder:DIR --val-data folder:VAL --workers W --epochs 1
     --max-steps STEPS`; its images/s is metrics.csv's (training images per second, data
     loading included), its peak memory the largest sum of RSS (and of PSS, which counts
     pages shared by the DataLoader workers once) over the process tree, sampled every
     0.2 s, and getrusage(RUSAGE_CHILDREN)'s max RSS (the largest single process);
   - preload: the same model, seed and loss on the same batches (science.data's sampler
     with the same seed), decoded into memory first; the images/s of STEPS
     forward+backward+Adam steps (after one untimed warm-up step). In the same process,
     interleaved with those in two halves, STEPS steps on batches streamed by WORKERS
     workers, timing how long each step waited for its batch (the direct measure of
     whether data loading is the bottleneck). Sampled for memory like the stream run.
3. Prints medians and the targets (peak <= 1.5 GB; stream >= 0.8 x preload) and writes
   benchmarks/data_loading.json. Results and their conditions: benchmarks/data_loading.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "dyrcnn_x4.dyn"
PARAMS = {"size": "64", "steps": "2", "recurrence": "none"}
PEAK_TARGET_GB, RATE_TARGET = 1.5, 0.8


# ------------------------------------------------------------------ images
def _write(job: tuple[str, int, int, int]) -> None:
    """One class-tinted noise PNG."""
    import numpy as np
    from PIL import Image

    path, label, seed, size = job
    rng = np.random.default_rng(seed)
    tint = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], np.float32)
    pixels = 0.5 * rng.integers(0, 256, (size, size, 3)).astype(np.float32) + 0.5 * tint
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)


def make_images(root: Path, n: int, classes: int = 10, size: int = 64, offset: int = 0) -> float:
    """`n` PNGs in `classes` folders under `root`; returns the seconds it took."""
    start = time.perf_counter()
    jobs = []
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = i % classes
        jobs.append((str(root / f"class{c}" / f"{i:06d}.png"), c, offset + i, size))
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        pool.map(_write, jobs, chunksize=256)
    return time.perf_counter() - start


# ------------------------------------------------------------------ memory of a process tree
class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, every: float = 0.2, pss_every: int = 10) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.pss_every, self.done = pid, every, pss_every, threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.max_processes = 0

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        tick = 0
        while not self.done.is_set():
            rss = pss = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    if tick % self.pss_every == 0:  # smaps: slow, and it holds the process's memory lock
                        pss += getattr(p.memory_full_info(), "pss", 0)
                except psutil.Error:
                    pass
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.max_processes = max(self.max_processes, len(procs))
            tick += 1
            self.done.wait(self.every)


# ------------------------------------------------------------------ the two measurements
def stream(args, data: Path, val: Path, out: Path) -> dict:
    """`dynv train` on the folder in a subprocess: images/s from metrics.csv, peak memory of its tree."""
    cmd = [sys.executable, "-m", "dynvision_dsl.cli", "train", str(SPEC), "--data", f"folder:{data}",
           "--val-data", f"folder:{val}", "--workers", str(args.workers), "--batch", str(args.batch),
           "--epochs", "1", "--max-steps", str(args.steps), "--out", str(out), "--force", "--no-progress"]
    for k, v in PARAMS.items():
        cmd += ["--set", f"{k}={v}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    monitor = TreeMemory(proc.pid)
    monitor.start()
    stdout, stderr = proc.communicate()
    monitor.done.set()
    monitor.join()
    if proc.returncode != 0:
        raise SystemExit(f"dynv train failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest waited-for process
    with (out / "metrics.csv").open() as fh:
        row = next(csv.DictReader(fh))
    return {"images_per_s": float(row["images_per_s"]), "peak_tree_rss_gb": monitor.peak_rss / 2**30,
            "peak_tree_pss_gb": monitor.peak_pss / 2**30, "processes": monitor.max_processes,
            "max_single_rss_gb": max(child_max, before) / 2**20}


def preload(args, data: Path) -> dict:
    """The model's own training rate on the same batches, decoded into memory first (a subprocess)."""
    cmd = [sys.executable, __file__, "--preload-worker", "--dir", str(data), "--batch", str(args.batch),
           "--steps", str(args.steps), "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    monitor = TreeMemory(proc.pid)  # the same sampling as the stream run, so both pay for it alike
    monitor.start()
    stdout, stderr = proc.communicate()
    monitor.done.set()
    monitor.join()
    if proc.returncode != 0:
        raise SystemExit(f"preload failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def preload_worker(data: Path, batch: int, steps: int, workers: int) -> None:
    """Compile as dynv train does (seed 0); time STEPS steps on the first STEPS batches decoded into
    memory, and, interleaved in two halves each, STEPS steps on batches streamed by WORKERS workers,
    with the time spent waiting for them; print JSON."""
    import torch

    from dynvision_dsl.pipeline import compile as compile_spec
    from dynvision_dsl.science.data import folder, split, train_loader
    from dynvision_dsl.science.train.losses import _loss

    torch.manual_seed(0)
    model = compile_spec(SPEC.read_text(), PARAMS, file=str(SPEC))
    train_set = split(folder(data, tuple(model.input_shape)), 0.2, 0)[0]
    cpu = torch.device("cpu")
    memory = [(b.x.clone(), b.y.clone()) for b, _ in zip(train_loader(train_set, batch, cpu, seed=0).epoch(1),
                                                         range(steps))]
    streamed = train_loader(train_set, batch, cpu, seed=0, workers=workers).epoch(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    labelled = torch.arange(model.steps) >= int(model.readout_from)  # dynv train's default: every step it reads out

    def step(x, y):
        loss = _loss(model(x), y, labelled)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(*memory[0])  # warm-up (first-call allocations), not timed
    next(streamed)  # the workers are up before the clock starts
    times = {"preload": 0.0, "stream": 0.0, "wait": 0.0}
    half = steps // 2
    for part in (memory[:half], memory[half:]):
        start = time.perf_counter()
        for x, y in part:
            step(x, y)
        times["preload"] += time.perf_counter() - start
        start = time.perf_counter()
        for _ in part:
            ready = time.perf_counter()
            b = next(streamed)
            times["wait"] += time.perf_counter() - ready
            step(b.x, b.y)
        times["stream"] += time.perf_counter() - start
    streamed.close()
    print(json.dumps({"images_per_s": steps * batch / times["preload"],
                      "in_process_stream_images_per_s": steps * batch / times["stream"],
                      "wait_share": times["wait"] / times["stream"], "threads": torch.get_num_threads()}))


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


# ------------------------------------------------------------------ main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=40_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=16, help="optimiser steps per measurement (--max-steps)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", type=Path, help="image folder (kept; default a temporary folder)")
    p.add_argument("--preload-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.preload_worker:
        return preload_worker(args.dir, args.batch, args.steps, args.workers)
    with tempfile.TemporaryDirectory(prefix="dynv-data-bench-") as tmp:
        base = args.dir or Path(tmp)
        data, val = base / "train", base / "val"
        made = None
        if not data.is_dir():
            made = make_images(data, args.images)
            make_images(val, 200, offset=10**7)
            print(f"wrote {args.images} PNGs in {made:.1f} s", flush=True)
        results = {"stream": [], "preload": []}
        for r in range(args.rounds):
            results["stream"].append(stream(args, data, val, Path(tmp) / f"run{r}"))
            results["preload"].append(preload(args, data))
            print(f"round {r + 1}: stream {results['stream'][-1]}, preload {results['preload'][-1]}", flush=True)
    report(args, results, made)


def report(args, results: dict, made: float | None) -> None:
    med = {k: statistics.median(r[k] for r in results["stream"]) for k in results["stream"][0]}
    pre = statistics.median(r["images_per_s"] for r in results["preload"])
    inproc = statistics.median(r["in_process_stream_images_per_s"] for r in results["preload"])
    wait = statistics.median(r["wait_share"] for r in results["preload"])
    ratio = med["images_per_s"] / pre
    summary = {
        "images": args.images, "workers": args.workers, "batch": args.batch, "steps": args.steps,
        "rounds": args.rounds, "spec": f"{SPEC.name} " + " ".join(f"--set {k}={v}" for k, v in PARAMS.items()),
        "cpus": os.cpu_count(), "torch_threads": results["preload"][0]["threads"], "machine": platform.platform(),
        "generation_s": made, "stream_median": med, "preload_median_images_per_s": pre, "ratio": ratio,
        "in_process_stream_median_images_per_s": inproc, "in_process_ratio": inproc / pre, "wait_share_median": wait,
        # RSS summed over the tree counts the pages the forked workers share with the trainer once per
        # process; PSS shares them out, so it is the tree's real footprint
        "peak_pss_ok": med["peak_tree_pss_gb"] <= PEAK_TARGET_GB,
        "peak_rss_sum_ok": med["peak_tree_rss_gb"] <= PEAK_TARGET_GB,
        "rate_ok": inproc / pre >= RATE_TARGET, "end_to_end_rate_ok": ratio >= RATE_TARGET, "rounds_raw": results,
    }
    print(f"stream: {med['images_per_s']:.1f} images/s (median of {args.rounds}), peak tree RSS "
          f"{med['peak_tree_rss_gb']:.2f} GB, PSS {med['peak_tree_pss_gb']:.2f} GB, largest process "
          f"{med['max_single_rss_gb']:.2f} GB")
    print(f"preload: {pre:.1f} images/s; stream / preload = {ratio:.2f} (target >= {RATE_TARGET}); "
          f"peak PSS <= {PEAK_TARGET_GB} GB: {summary['peak_pss_ok']}")
    print(f"in one process, interleaved: streamed {inproc:.1f} images/s = {inproc / pre:.2f} x preloaded; "
          f"{100 * wait:.1f}% of the streamed steps' time waiting for data")
    (ROOT / "benchmarks" / "data_loading.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
