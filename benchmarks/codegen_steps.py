"""Where could readable code cost time? DyRCNNx4's steady step (_step_2) alone, 50 calls per
sample, process CPU time, 1 thread (least disturbed on a loaded machine), interleaved: the
module as emitted at REV, the current one, the current one with its named constants put back
as literals, with plain tuples instead of StepOutputs, and with unique names (no name reused).

usage: python benchmarks/codegen_steps.py [ROUNDS=61] [REV=758d5fe]
"""
import re
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import codegen_overhead  # noqa: E402
import dynvision_dsl as dd  # noqa: E402
from dynvision_dsl import codenames  # noqa: E402


def variants(spec: Path, params: dict, rev: str) -> dict[str, str]:
    new = dd.emit(spec.read_text(), params=params, file=str(spec))
    literals = new
    for name, value in re.findall(r"^    (\w+) = ([0-9.e-]+)  #", new, re.M):
        literals = literals.replace(f"self.{name}", value)
    bind = codenames.Namespace.bind
    codenames.Namespace.bind = lambda self, want, value, free=None: bind(self, want, value)
    try:
        unique = dd.emit(spec.read_text(), params=params, file=str(spec))
    finally:
        codenames.Namespace.bind = bind
    return {"old": codegen_overhead._emit_at(rev, spec, params), "new": new, "new, literals": literals,
            "new, plain tuples": new.replace("return StepOutputs(", "return _plain("), "new, unique names": unique}


def main() -> None:
    rounds, rev = int(sys.argv[1]) if len(sys.argv) > 1 else 61, sys.argv[2] if len(sys.argv) > 2 else "758d5fe"
    torch.set_num_threads(1)
    models = {}
    for label, source in variants(ROOT / "specs" / "dyrcnn_x4.dyn", {"size": 16}, rev).items():
        namespace = {"_plain": lambda **kw: tuple(kw.values())}
        exec(compile(source, label, "exec"), namespace)  # noqa: S102 - modules emitted by this project
        models[label] = namespace["DyRCNNx4"]().eval()
    state = models["new"].state_dict()
    for m in models.values():
        m.load_state_dict(state)
    x = torch.randn(1, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    maps = [torch.randn(1, c, s, s) for c, s in ((36, 16), (64, 8), (121, 4), (256, 2))]
    times = {k: [] for k in models}
    with torch.no_grad():
        for i in range(rounds):
            for label in list(models) if i % 2 else list(models)[::-1]:
                step, start = models[label]._step_2, time.process_time()
                for _ in range(50):
                    step(x, *maps, *maps)
                times[label].append((time.process_time() - start) / 50)
    base = statistics.median(times["old"])
    for label, values in times.items():
        print(f"{label:18s} {statistics.median(values) * 1e6:8.1f} us per steady step  ({statistics.median(values) / base:.3f})")


if __name__ == "__main__":
    main()
