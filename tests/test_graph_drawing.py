"""science/plot: the connectivity drawing fits a page and cuts no label, stages
collapse, the timeline shows first presence, SVG/HTML carry tooltips, and
docs/graphs/ is current."""
from __future__ import annotations

import importlib.util
import re
import shutil
import struct

import pytest

import dynvision_dsl
from dynvision_dsl.cli import main
from dynvision_dsl.pipeline import build
from dynvision_dsl.science.plot import labels as L
from dynvision_dsl.science.plot.collapse import GroupError, auto_groups, choose, collapse
from dynvision_dsl.science.plot.graph import GraphPicture, draw_graph, graph_to_dot
from dynvision_dsl.science.plot.layout import layout
from dynvision_dsl.science.plot.timeline import TimelineError, TimelinePicture

from conftest import ROOT, SPECS
from test_plot import SMALL, chain_spec

EPS = 1e-3


@pytest.fixture(scope="module")
def zoo():
    return {p.stem: build(p)[0].graph for p in SPECS}


def _gallery():
    spec = importlib.util.spec_from_file_location("graphs_gallery", ROOT / "benchmarks" / "graphs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _overlap(a, b) -> bool:
    return a[0] < b[2] - EPS and b[0] < a[2] - EPS and a[1] < b[3] - EPS and b[1] < a[3] - EPS


def _inside(inner, outer) -> bool:
    return inner[0] >= outer[0] - EPS and inner[1] >= outer[1] - EPS and inner[2] <= outer[2] + EPS \
        and inner[3] <= outer[3] + EPS


def _segment_hits_box(a, b, box) -> bool:
    """An axis-parallel segment through the inside of a box (touching its border is fine)."""
    x0, y0, x1, y1 = box
    if abs(a[0] - b[0]) < EPS:  # vertical
        lo, hi = sorted((a[1], b[1]))
        return x0 + EPS < a[0] < x1 - EPS and lo < y1 - EPS and hi > y0 + EPS
    if abs(a[1] - b[1]) < EPS:  # horizontal
        lo, hi = sorted((a[0], b[0]))
        return y0 + EPS < a[1] < y1 - EPS and lo < x1 - EPS and hi > x0 + EPS
    return False


def assert_readable(d):
    """Size bounds, nothing cut or outside the page, no label on a box or on another label,
    no channel-routed edge through a box."""
    assert d.width * 150 <= 2400 and max(d.width / d.height, d.height / d.width) <= 6, (d.width, d.height)
    page = (0, 0, d.width, d.height)
    texts = d.all_texts()
    for t in texts:
        assert not any("…" in line or "..." in line for line in t.lines), t.lines
        assert _inside(t.bbox(), page), t.lines
    boxes = {b.name: (b.x0, b.y0, b.x1, b.y1) for b in d.boxes}
    for b in d.boxes:
        assert _inside(b.text.bbox(), boxes[b.name]), b.name  # the box is sized to its text
    for a in d.boxes:
        for b in d.boxes:
            assert a is b or not _overlap(boxes[a.name], boxes[b.name]), (a.name, b.name)
    labels = [r.label for r in d.routes if r.label] + d.texts
    for i, t in enumerate(labels):
        for name, box in boxes.items():
            assert not _overlap(t.bbox(), box), (t.lines, name)
        for u in labels[i + 1:]:
            assert not _overlap(t.bbox(), u.bbox()), (t.lines, u.lines)
    for r in d.routes:
        if r.curve:
            continue
        for a, b in zip(r.points, r.points[1:]):
            for name, box in boxes.items():
                if len(r.points) > 2 or name not in r.ends:
                    assert not _segment_hits_box(a, b, box) or name in r.ends and (a, b) in (
                        (r.points[0], r.points[1]), (r.points[-2], r.points[-1])), (r.ends, name)


@pytest.mark.parametrize("stem", [p.stem for p in SPECS])
def test_every_zoo_drawing_fits_a_page_and_cuts_no_label(zoo, stem):
    d = layout(zoo[stem])
    assert_readable(d)
    assert {b.name for b in d.boxes} == set(zoo[stem].nodes)
    assert sum(1 for r in d.routes if r.kind != "lateral") == sum(1 for u, v in zoo[stem].edges() if u != v)


@pytest.mark.parametrize("stem", ["resnet18", "cordsnet", "cornet_rt", "dyrcnn_x8"])
def test_every_collapsed_zoo_drawing_is_readable(zoo, stem):
    g = collapse(zoo[stem], choose(zoo[stem], collapse=True))
    assert_readable(layout(g))


FAN = "\n".join(
    ["model Fan", "time {", "  dt = 1 ms", "  steps = 3", "}", "input image [1, 8, 8]"]
    + [f"area B{i} [2] {{ r = relu(input) }}" for i in range(8)] + ["area T [2] { r = relu(input) }"]
    + [f"image -> B{i} : conv(3)" for i in range(8)] + [f"B{i} -> T : conv(3), delay {i} ms" for i in range(8)]
    + ["B0 -> B1 : conv(1), delay 1 ms", "T -> B3 : conv(1), delay 2 ms", "readout T : avgpool | linear(2)"]) + "\n"


@pytest.mark.parametrize("name", ["small", "chain40", "fan"])
def test_other_shapes_are_readable(name):
    """Every edge kind with ports; a 40-area chain (5 rows, jumps down the margin); a
    fan-out whose stacked boxes reach the channels through side lanes."""
    text = {"small": SMALL, "chain40": chain_spec(40), "fan": FAN}[name]
    d = layout(build(text)[0].graph)
    assert_readable(d)
    if name == "fan":
        assert any(len(r.points) > 4 and r.points[0][0] == next(b.x1 for b in d.boxes if b.name == "B5")
                   for r in d.routes)  # B5 leaves sideways: a box above it is in the way of its top


def test_long_chains_wrap_into_rows(zoo):
    assert layout(zoo["cordsnet"]).rows >= 2 and layout(zoo["resnet18"]).rows >= 2
    assert layout(zoo["dyrcnn_x4"]).rows == 1  # a 4-area model stays one readable row


def test_canvas_labels_are_compact_and_tooltips_complete(zoo):
    assert L.canvas_pipeline("conv(bias=False, dilation=1, groups=1, k=7, padding=3, stride=2, weightnorm=True) | "
                             "avgpool(k=3, padding=1, stride=2)") == ["conv 7/2 | avgpool 3/2"]
    assert L.canvas_pipeline("maxpool(k=2, padding=0, stride=2)") == ["maxpool 2"]  # stride = kernel: left out
    assert L.canvas_pipeline("avgpool | linear(bias=True, n=10)") == ["avgpool | linear 10"]
    assert L.canvas_pipeline("lateral(k=5, kind=local)") == ["lateral local k=5"]
    assert L.canvas_pipeline(" | ".join(["identity"] * 12)) == ["identity | identity"] * 6  # wrapped, never cut
    g = zoo["cordsnet"]
    u, v, _, d = next(e for e in L.sorted_edges(g) if e[:2] == ("image", "layer0"))
    tip = L.edge_tooltip(u, v, d)
    assert "weightnorm=True" in tip and "module layer0.conv [3, 224, 224] → [64, 112, 112]" in tip


def test_svg_has_a_tooltip_on_every_box_and_edge(zoo, tmp_path):
    pic = GraphPicture(zoo["dyrcnn_x8"])
    svg = pic.svg()
    assert pic._repr_svg_() == svg and svg.lstrip().startswith("<?xml")
    titles = re.findall(r"<title>(.*?)</title>", svg, re.S)
    assert any(t.startswith("V1 (area)\nshape [64, 32, 32]") for t in titles)
    assert any("pipeline: maxpool(k=3, padding=1, stride=2) | conv(" in t for t in titles)
    boxes = len(re.findall(r'<g id="dvnode\d+">', svg))
    edges = len(re.findall(r'<g id="dvedge\d+">', svg))
    assert boxes == zoo["dyrcnn_x8"].number_of_nodes() and edges == len(pic.drawing.routes)
    assert svg.count("<title>") >= boxes + edges


def test_html_view_is_self_contained(zoo, tmp_path):
    out = GraphPicture(zoo["resnet18"]).save(tmp_path / "r.html")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "addEventListener('wheel'" in page
    assert "data-tip" in page and "<title>" in page  # tooltips move from <title> to data-tip on load
    without_ns = re.sub(r'xmlns(:\w+)?="http[^"]*"', "", page)
    assert not re.search(r"https?://|<link|<script src|@import", without_ns)


def test_png_size_matches_the_layout(zoo, tmp_path):
    pic = GraphPicture(zoo["cordsnet"])
    data = pic.save(tmp_path / "c.png").read_bytes()
    w, h = struct.unpack(">II", data[16:24])
    assert (abs(w - pic.size_px()[0]) <= 2 and abs(h - pic.size_px()[1]) <= 2) and w <= 2400


def test_collapse_resnet_stages(zoo):
    g = zoo["resnet18"]
    assert [(grp.name, len(grp.members)) for grp in auto_groups(g)] == [("l1", 4), ("l2", 4), ("l3", 4), ("l4", 4)]
    c = collapse(g, choose(g, collapse=True))
    assert sorted(n for n in c.nodes if c.nodes[n]["role"] == "group") == ["l1", "l2", "l3", "l4"]
    assert c.nodes["l2"]["shape"] == g.nodes["l2_1"]["shape"]
    assert "l2_0a → l2_0: conv 3" in c.nodes["l2"]["internal"]
    ff = {(u, v): d for u, v, _, d in c.edges(keys=True, data=True)}
    assert ff[("l1", "l2")]["merged"] == 2 and ff[("l1", "l2")]["kind"] == "feedforward"
    assert L.edge_lines(ff[("l1", "l2")]) == ["conv 3/2 + conv 1/2"]
    assert all(d["kind"] in ("feedforward", "readout") for d in ff.values())  # skips were inside the stages
    expanded = collapse(g, choose(g, expand=["layer1"]))  # torchvision's module name picks l1
    assert "l1_0a" in expanded.nodes and "l1" not in expanded.nodes and "l2" in expanded.nodes
    assert choose(g, expand=["stem"]) == auto_groups(g)  # an area in no stage: nothing to open, no error


def test_collapse_keeps_laterals_and_feedback(zoo):
    c = collapse(zoo["cornet_rt"], choose(zoo["cornet_rt"], collapse=True))
    assert sorted(c.nodes) == ["IT", "V1", "V2", "V4", "image", "readout"]
    x8 = collapse(zoo["dyrcnn_x8"], choose(zoo["dyrcnn_x8"], collapse=True))
    assert ("V1", "V1") in x8.edges()  # the lateral of V1 (inside the group) stays a loop
    x4 = dynvision_dsl.compile((ROOT / "specs" / "dyrcnn_x4.dyn").read_text(), {"feedback": "add", "size": "16"}).graph
    grouped = collapse(x4, choose(x4, group=["early=V1,V2"]))
    kinds = {(u, v): d["kind"] for u, v, _, d in grouped.edges(keys=True, data=True)}
    assert kinds[("V4", "early")] == "feedback" and kinds[("early", "V4")] == "feedforward"
    assert kinds[("IT", "early")] == "feedback"


@pytest.mark.parametrize("args, message", [
    (dict(group=["V1"]), "at least two areas"),
    (dict(group=["V1,V9"]), "no area 'V9'"),
    (dict(group=["V1,V2", "V2,V4"]), "in two --group"),
    (dict(expand=["l9"]), "no collapsible group"),
])
def test_group_and_expand_errors(zoo, args, message):
    with pytest.raises(GroupError, match=message):
        choose(zoo["dyrcnn_x4"] if "group" in args else zoo["resnet18"], **args)


def test_timeline_of_x4_with_feedback(tmp_path):
    program, _ = build(ROOT / "specs" / "dyrcnn_x4.dyn", {"feedback": "add"})
    g = program.graph
    fb = [d for u, v, _, d in g.edges(keys=True, data=True) if d["kind"] == "feedback"]
    assert len(fb) == 2 and all(d["present_from"] == d["delay_steps"] == 15 for d in fb)  # 30 ms at dt 2 ms
    assert g.nodes["image"]["present_from"] == 0 and g.nodes["readout"]["present_from"] == 0
    pic = TimelinePicture(g)
    svg = pic.svg()
    assert pic._repr_svg_() == svg
    assert "IT → V2 (feedback)" in svg and "first present: step 15 (30 ms)" in svg
    assert pic.save(tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
    cords = TimelinePicture(build(ROOT / "specs" / "cordsnet.dyn")[0].graph)  # idle steps before the run
    assert cords._span()[0] < -199


def test_timeline_of_collapsed_stages(zoo):
    g = collapse(zoo["resnet18"], choose(zoo["resnet18"], collapse=True))
    merged = [d for *_, d in g.edges(keys=True, data=True) if d.get("merged")]
    assert merged and all(d["delay_steps"] == 0 and d["present_from"] == 0 for d in merged)
    assert g.nodes["l3"]["present_from"] == 0 and "l3 (group)" in TimelinePicture(g).svg()


def test_timeline_needs_a_schedule():
    g = build(ROOT / "specs" / "dyrcnn_x2.dyn")[0].graph.copy()
    del g.nodes["layer1"]["present_from"]
    with pytest.raises(TimelineError, match="layer1"):
        TimelinePicture(g)


def test_compiled_model_shows_itself_in_a_notebook():
    m = dynvision_dsl.compile((ROOT / "specs" / "dyrcnn_x2.dyn").read_text(), {"size": "16"})
    svg = m._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<title>layer1 (area)" in svg
    assert "<title>" in m.picture(timeline=True).svg()


def test_cli_graph_options(tmp_path, capsys):
    spec = str(ROOT / "specs" / "resnet18.dyn")
    assert main(["graph", spec, "--collapse", "-o", str(tmp_path / "c.svg"), "--engine", "matplotlib"]) == 0
    assert "<title>l1 (group)" in (tmp_path / "c.svg").read_text()
    assert main(["graph", spec, "--expand", "layer1", "-o", str(tmp_path / "e.dot")]) == 0
    dot = (tmp_path / "e.dot").read_text()
    assert '"l1_0a" [' in dot and '"l2" [' in dot
    assert main(["graph", str(ROOT / "specs" / "dyrcnn_x4.dyn"), "--set", "feedback=add", "--timeline",
                 "-o", str(tmp_path / "t.html")]) == 0
    assert "first present" in (tmp_path / "t.html").read_text()
    capsys.readouterr()
    assert main(["graph", spec, "--expand", "layer9", "-o", str(tmp_path / "x.svg")]) == 1
    assert main(["graph", spec, "--timeline", "-o", str(tmp_path / "x.dot")]) == 1
    assert main(["graph", spec, "-o", str(tmp_path / "x.jpg")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("dynv: ") for e in err) and "did you mean 'layer1'" not in err[0]
    assert "no collapsible group" in err[0] and ".dot" in err[1] and ".jpg" in err[2]
    assert not (tmp_path / "x.svg").exists() and not (tmp_path / "x.dot").exists()


def test_cli_graphviz_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", str(ROOT / "specs" / "dyrcnn_x2.dyn"), "--engine", "graphviz", "-o",
                 str(tmp_path / "g.png")]) == 1
    assert "not on PATH" in capsys.readouterr().err and not (tmp_path / "g.png").exists()
    assert main(["graph", str(ROOT / "specs" / "dyrcnn_x2.dyn"), "-o", str(tmp_path / "g.png")]) == 0  # auto


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")
@pytest.mark.parametrize("stem", ["cordsnet", "resnet18", "dyrcnn_x4", "cornet_rt"])
def test_graphviz_drawings_fit_a_page(zoo, stem, tmp_path):
    data = draw_graph(zoo[stem], tmp_path / "g.png", engine="graphviz").read_bytes()
    w, h = struct.unpack(">II", data[16:24])
    assert w <= 2400 and max(w / h, h / w) <= 6, (w, h)
    svg = draw_graph(zoo[stem], tmp_path / "g.svg", engine="graphviz").read_text()
    assert "first present" in svg  # the tooltips travel through dot


def test_dot_wraps_long_chains(zoo):
    dot = graph_to_dot(zoo["cordsnet"], wrap=True)
    assert "rankdir=TB" in dot and '"image" -> "layer2" [style=invis' in dot
    assert "…" not in dot and "rankdir=LR" in graph_to_dot(zoo["cordsnet"])


@pytest.mark.parametrize("entry", _gallery().gallery(), ids=lambda e: e[0])
def test_docs_graphs_are_current(entry):
    """docs/graphs/*.svg are what benchmarks/graphs.py draws today (matplotlib, stable ids)."""
    committed = ROOT / "docs" / "graphs" / f"{entry[0]}.svg"
    assert committed.exists(), "run: python benchmarks/graphs.py"
    assert _gallery().picture(entry).svg() == committed.read_text(), "regenerate: python benchmarks/graphs.py"
