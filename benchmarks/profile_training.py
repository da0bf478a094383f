"""Profile the DyRCNNx4 training step: where its time and its autograd memory go.

usage (the reference venv also imports dynvision_dsl):

    PYTHONPATH=$PWD .venv-reference/bin/python benchmarks/profile_training.py [--size 64 --batch 8]
        [--steps 20] [--reference] [--out benchmarks/profiles_training.md]

One training step = train mode, zero_grad(set_to_none=True), forward, logits.sum().backward(),
as in benchmarks/speed.py. Writes the per-op profile (torch.profiler, forward and
backward ops, self CPU time), the tensors autograd saves for backward (read off every graph
node's `_saved_*` attributes after the forward, deduplicated by storage), resident memory after
the forward and at the backward peak against glibc's allocated bytes (the gap is freed memory
the heap keeps resident: fragmentation), and with `--reference` the last two for DynVision 0.1.0.
"""
from __future__ import annotations

import argparse
import collections
import logging
import sys
import warnings
from pathlib import Path

logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed  # noqa: E402


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    """The benchmark's training step (speed.train_step)."""
    speed.train_step(model, x)


def op_table(model: nn.Module, x: torch.Tensor, rows: int) -> tuple[list[str], float]:
    """Self CPU time per aten op (forward ops and backward ops apart) for one training step."""
    train_step(model, x)  # warm
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True) as prof:
        train_step(model, x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ops = [e for e in events if e.key.startswith("aten::") or "Backward" in e.key]
    ops.sort(key=lambda e: -e.self_cpu_time_total)
    lines = ["| op | calls | self CPU ms | % of step | self CPU mem MiB (alloc - free) |", "|---|---|---|---|---|"]
    for e in ops[:rows]:
        lines.append(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | "
                     f"{100 * e.self_cpu_time_total / total:.1f} | {e.self_cpu_memory_usage / 2**20:.0f} |")
    by_shape = prof.key_averages(group_by_input_shape=True)
    by_shape = sorted([e for e in by_shape if e.key.startswith("aten::")], key=lambda e: -e.self_cpu_time_total)
    lines += ["", "Top ops by input shape:", "",
              "| op | input shapes | calls | self CPU ms |", "|---|---|---|---|"]
    for e in by_shape[:rows]:
        shapes = str(e.input_shapes).replace("|", "/")
        if len(shapes) > 90:
            shapes = shapes[:87] + "..."
        lines.append(f"| `{e.key}` | {shapes} | {e.count} | {e.self_cpu_time_total / 1e3:.1f} |")
    return lines, total / 1e3


def graph_nodes(root) -> list:
    """Every autograd node reachable from `root` (a grad_fn), each once."""
    seen, stack, out = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        stack.extend(fn for fn, _ in node.next_functions)
    return out


def saved_tensors(root, params: set[int]) -> list[tuple[str, str, torch.Tensor]]:
    """(node name, attribute, tensor) for every tensor a graph node saved for backward."""
    found = []
    for node in graph_nodes(root):
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                value = getattr(node, attr)
            except RuntimeError:  # freed or not available
                continue
            values = value if isinstance(value, (tuple, list)) else (value,)
            for v in values:
                if isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() not in params:
                    found.append((node.name(), attr[len("_saved_"):], v))
    return found


def layout(t: torch.Tensor) -> str:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return "channels-last"
    return "contiguous" if t.is_contiguous() else "strided view"


def saved_table(model: nn.Module, x: torch.Tensor) -> tuple[list[str], float]:
    """Saved tensors per (node, attribute, dtype, shape, layout), bytes counted once per storage."""
    model.train()
    model.zero_grad(set_to_none=True)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params.add(x.untyped_storage().data_ptr())
    y = model(x)
    found = saved_tensors(y.grad_fn, params)
    seen, rows = set(), collections.OrderedDict()
    for name, attr, t in found:
        ptr = t.untyped_storage().data_ptr()
        new = ptr not in seen
        seen.add(ptr)
        key = (name, attr, str(t.dtype).replace("torch.", ""), tuple(t.shape), layout(t))
        n, own, shared = rows.get(key, (0, 0, 0))
        nbytes = t.untyped_storage().nbytes()
        rows[key] = (n + 1, own + (nbytes if new else 0), shared + (0 if new else 1))
    total = sum(own for _, own, _ in rows.values()) / 2**20
    lines = ["| node | saved | dtype | shape | layout | count | new MiB | shared with an earlier entry |",
             "|---|---|---|---|---|---|---|---|"]
    for (name, attr, dtype, shape, lay), (n, own, shared) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"| {name} | {attr} | {dtype} | {list(shape)} | {lay} | {n} | {own / 2**20:.1f} | {shared} |")
    lines.append(f"| **total** | | | | | {len(found)} | **{total:.1f}** | |")
    del y
    return lines, total


def _heap_in_use() -> float | None:
    """glibc's bytes in use (heap + mmapped chunks) in MiB, or None off glibc."""
    import ctypes

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Mallinfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def resident_table(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Resident memory (VmRSS) and allocated bytes above the start: after the forward and at the
    backward node where resident memory peaks (sampled before each node runs), and VmHWM."""
    import gc

    model.train()
    model.zero_grad(set_to_none=True)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    rss0, heap0 = speed.proc_status("VmRSS"), _heap_in_use() or 0.0
    sample = lambda: (speed.proc_status("VmRSS") - rss0, (_heap_in_use() or 0.0) - heap0)  # noqa: E731
    y = model(x)
    after_fwd = sample()
    trace = []
    for node in graph_nodes(y.grad_fn):
        node.register_prehook(lambda g, node=node: trace.append((node.name(), *sample())) and None)
    y.sum().backward()
    peak = max(trace, key=lambda t: t[1])
    hwm = speed.proc_status("VmHWM") - rss0
    return ["| point | resident rise MiB | allocated rise MiB | resident - allocated |", "|---|---|---|---|",
            f"| after the forward | {after_fwd[0]:.0f} | {after_fwd[1]:.0f} | {after_fwd[0] - after_fwd[1]:.0f} |",
            f"| backward peak (before {peak[0]}) | {peak[1]:.0f} | {peak[2]:.0f} | {peak[1] - peak[2]:.0f} |",
            f"| VmHWM (peak resident of the whole step) | {hwm:.0f} | | |"]


def resident(args, which: str) -> list[str]:
    """resident_table in a fresh subprocess (in this one the heap is already grown)."""
    import subprocess

    cmd = [sys.executable, __file__, "--_resident", which, "--size", str(args.size), "--batch", str(args.batch),
           "--steps", str(args.steps), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.startswith("|")]


def build(which: str, S: int, T: int) -> nn.Module:
    torch.manual_seed(0)
    if which == "reference":
        model = speed.build_reference("x4", S, T)
        speed.warm_reference(model, S, T)
        return model
    return speed.compile_model("x4", S, T)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--reference", action="store_true", help="also list the reference's saved tensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the tables here (markdown) as well as printing them")
    ap.add_argument("--_resident", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    S, T, B = args.size, args.steps, args.batch
    x = torch.randn(B, T, 3, S, S, generator=torch.Generator().manual_seed(1))
    if args._resident:
        print("\n".join(resident_table(build(args._resident, S, T), x)))
        return 0
    ours = build("compiled", S, T)
    title = f"DyRCNNx4 training step, input ({T}, 3, {S}, {S}) batch {B}, {args.threads} threads"
    L = [f"## {title}", "", "### Per-op profile (compiled, one step after one warm-up step)", ""]
    ops, total_ms = op_table(ours, x, args.rows)
    L += [f"Profiled step: {total_ms:.0f} ms of self CPU time (profiler overhead included).", ""] + ops
    L += ["", "### Tensors autograd keeps for backward (compiled)", ""]
    saved, mib = saved_table(ours, x)
    L += saved + ["", f"Saved for backward: {mib:.1f} MiB ({mib / T:.1f} MiB per step)."]
    L += ["", "### Resident memory of one training step (compiled, fresh process)", ""] + resident(args, "compiled")
    if args.reference:
        ref = build("reference", S, T)
        L += ["", "### Tensors autograd keeps for backward (DynVision 0.1.0 reference)", ""]
        rsaved, rmib = saved_table(ref, x)
        L += rsaved + ["", f"Saved for backward: {rmib:.1f} MiB ({rmib / T:.1f} MiB per step)."]
        L += ["", "### Resident memory of one training step (reference, fresh process)", ""] + resident(args, "reference")
    text = "\n".join(L) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
