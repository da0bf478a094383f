"""The README's zoo table: each spec's length and parameter count next to the
reference's lines of code for the same model.

usage: python benchmarks/zoo_table.py   (reads the reference's sources from
.venv-reference when benchmarks/reference/setup_reference.sh has made it)
"""
from __future__ import annotations

import glob
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = [  # spec, what it reproduces, reference module (dynvision/models/...)
    ("dyrcnn_x2", "DynVision 0.1.0 DyRCNNx2", "dyrcnn.py"),
    ("dyrcnn_x4", "DynVision 0.1.0 DyRCNNx4 (all recurrence kinds, feedback, supralinearity)", "dyrcnn.py"),
    ("dyrcnn_x8", "DynVision 0.1.0 DyRCNNx8 (recurrence targets)", "dyrcnn.py"),
    ("cornet_rt", "DynVision 0.1.0 CorNetRT", "cornet_rt.py"),
    ("cordsnet", "DynVision 0.1.0 CordsNet", "cordsnet.py"),
    ("alexnet", "torchvision AlexNet (steps = 1)", "alexnet.py"),
    ("resnet18", "torchvision ResNet-18 (steps = 1)", "resnet.py"),
    ("adaptive_x4", "our own: DyRCNNx4 with an adaptation current per area (repetition suppression)", None),
]


def reference_lines(module: str | None) -> str:
    if module is None:
        return "-"
    found = glob.glob(str(ROOT / ".venv-reference/lib/python*/site-packages/dynvision/models" / module))
    return str(sum(1 for _ in open(found[0]))) if found else "?"


def main() -> int:
    import dynvision_dsl as dd

    rows = ["| model | spec | spec lines (code) | parameters | reproduces | reference module (lines) |",
            "|---|---|---:|---:|---|---|"]
    for stem, what, module in ZOO:
        spec = ROOT / "specs" / f"{stem}.dyn"
        if not spec.exists():
            continue
        text = spec.read_text().splitlines()
        code = sum(1 for line in text if line.strip() and not line.strip().startswith("#"))
        model = dd.compile(spec.read_text(), file=str(spec))
        params = sum(p.numel() for p in model.parameters())
        rows.append(f"| {model.program.model.name} | `specs/{stem}.dyn` | {len(text)} ({code}) | {params:,} | {what} | "
                    + (f"`{module}` ({reference_lines(module)}) |" if module else "- |"))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
