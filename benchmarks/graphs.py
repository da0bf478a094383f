"""The drawings in docs/graphs/: every zoo spec, the collapsed ResNet-18 and the
timeline of DyRCNNx4 with feedback; prints each one's size at 150 dpi.
`tests/test_plot.py` checks that the committed files are current.

usage: python benchmarks/graphs.py          (writes docs/graphs/*.svg)
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# file stem, spec stem, params, collapse, timeline
EXTRA = [
    ("resnet18_collapsed", "resnet18", {}, True, False),
    ("dyrcnn_x4_timeline", "dyrcnn_x4", {"feedback": "add"}, False, True),
]


def gallery() -> list[tuple]:
    specs = sorted((ROOT / "specs").glob("*.dyn"))
    return [(p.stem, p.stem, {}, False, False) for p in specs] + EXTRA


def picture(entry: tuple):
    """The picture of one gallery entry, drawn with matplotlib (the same on every machine)."""
    from dynvision_dsl.pipeline import build
    from dynvision_dsl.science.plot.collapse import choose, collapse
    from dynvision_dsl.science.plot.graph import GraphPicture
    from dynvision_dsl.science.plot.timeline import TimelinePicture

    _, spec, params, collapsed, timeline = entry
    program, _ = build(ROOT / "specs" / f"{spec}.dyn", params or None)
    graph = collapse(program.graph, choose(program.graph, collapse=collapsed))
    return TimelinePicture(graph) if timeline else GraphPicture(graph)


def main() -> None:
    out = ROOT / "docs" / "graphs"
    out.mkdir(parents=True, exist_ok=True)
    print("| drawing | px at 150 dpi | aspect |\n|---|---:|---:|")
    for entry in gallery():
        pic = picture(entry)
        pic.save(out / f"{entry[0]}.svg")
        w, h = pic.size_px()
        print(f"| {entry[0]} | {w}×{h} | {max(w / h, h / w):.1f}:1 |")


if __name__ == "__main__":
    main()
