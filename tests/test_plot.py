"""dynvision_dsl.plot: DOT text, graph drawings and response plots."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import networkx as nx
import pytest
import torch

import dynvision_dsl
from dynvision_dsl.plot import draw_graph, graph_to_dot, plot_responses, short_pipeline
from dynvision_dsl.util.files import atomic_open

PNG = b"\x89PNG\r\n\x1a\n"
EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"

# ventral4.dyn in small, with every edge kind, delays and a port
SMALL = """
model Small
time {
  dt    = 2 ms
  steps = 6
  idle  = 2
}
input image [3, 16, 16]
dynamics leaky(tau) {
  tau * dr/dt = -r + input
  r = relu(r)
}
dynamics gated(tau) {
  tau * dr/dt = -r + input * (1 + tanh(fb))
  r = relu(r)
}
area V1 [4] : gated(tau=5 ms)
area V2 [6] : leaky(tau=5 ms)
area V4 [8] : leaky(tau=5 ms)
area IT [8] : leaky(tau=5 ms)
image -> V1 : conv(3)
V1 -> V2    : maxpool(3, stride=2, padding=1) | conv(3), delay 2 ms
V2 -> V4    : maxpool(3, stride=2, padding=1) | conv(3)
V4 -> IT    : conv(3, stride=2)
V1 -> V1    : lateral(full, 3), delay 4 ms
IT -> IT    : lateral(depthpointwise, 3), delay 4 ms
V1 -> V4    : adapt
V2 -> IT    : adapt
V4 -> V1.fb : adapt, delay 10 ms
IT -> V2    : adapt, delay 10 ms
readout IT : avgpool | linear(5)
"""


def chain_spec(n: int) -> str:
    lines = ["model Chain", "time {", "  dt = 1 ms", "  steps = 3", "}", "input image [1, 8, 8]",
             "dynamics leaky(tau) {", "  tau * dr/dt = -r + input", "  r = relu(r)", "}"]
    lines += [f"area A{i} [2] : leaky(tau={i + 1} ms)" for i in range(1, n + 1)]
    lines.append("image -> A1 : conv(3)")
    lines += [f"A{i} -> A{i + 1} : conv(3), delay {i % 2} ms" for i in range(1, n)]
    lines += [f"A{i} -> A{i} : lateral(self), delay 1 ms" for i in range(1, n + 1, 3)]
    lines += [f"A{i} -> A{i + 2} : adapt" for i in range(1, n - 1, 4)]
    lines += [f"A{n} -> A1 : adapt, delay 3 ms", f"readout A{n} : avgpool | linear(3)"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def small():
    return dynvision_dsl.compile(SMALL)


def _reversed_copy(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    h = nx.MultiDiGraph(**g.graph)
    for n in reversed(list(g.nodes)):
        h.add_node(n, **g.nodes[n])
    for u, v, k, d in reversed(list(g.edges(keys=True, data=True))):
        h.add_edge(u, v, key=k, **d)
    return h


def _edge_line(dot: str, u: str, v: str) -> str:
    lines = [ln for ln in dot.splitlines() if ln.strip().startswith(f'"{u}" -> "{v}" [')]
    assert len(lines) == 1, (u, v, lines)
    return lines[0]


def test_dot_is_deterministic_and_complete(small):
    g = small.graph
    dot = graph_to_dot(g)
    assert dot == graph_to_dot(g) == graph_to_dot(_reversed_copy(g))
    assert dot.startswith('digraph "Small" {') and dot.rstrip().endswith("}")
    assert "rankdir=LR" in dot and "rankdir=TB" in graph_to_dot(g, rankdir="TB")
    for area in ("V1", "V2", "V4", "IT"):
        assert f'"{area}" [label="{area}\\n' in dot
    assert '"readout" [label="readout\\n[5]"' in dot

    ff = _edge_line(dot, "V1", "V2")
    assert 'color="#000000"' in ff and "style=solid" in ff
    assert 'label="maxpool 3/2 | conv 3\\n2 ms"' in ff  # canvas form: kernel/stride
    assert 'label="conv 3/2"' in _edge_line(dot, "V4", "IT")  # no default args, no 0 ms
    assert 'tooltip="V1 → V2 (feedforward)\\npipeline: maxpool(k=3, padding=1, stride=2) | conv(' in ff
    assert "delay 2 ms (1 step)" in ff
    skip = _edge_line(dot, "V1", "V4")
    assert 'color="#1f5fd6"' in skip and "style=dashed" in skip
    fb = _edge_line(dot, "V4", "V1")
    assert 'color="#d62728"' in fb and "style=dashed" in fb and "constraint=false" in fb
    assert 'label="adapt · 10 ms · → fb"' in fb
    assert "→" not in _edge_line(dot, "IT", "V2").split("tooltip=")[0]
    lat = _edge_line(dot, "V1", "V1")
    assert 'color="#808080"' in lat and "label=" not in lat  # its text is in the box
    assert '"V1" [label="V1\\n[4, 16, 16]\\nτ = 5 ms\\n↻ full · 4 ms"' in dot
    assert '↻ depthpointwise · 4 ms"' in dot
    ro = _edge_line(dot, "IT", "readout")
    assert 'color="#2e7d32"' in ro and 'label="avgpool | linear 5"' in ro
    assert {d["kind"] for *_, d in g.edges(keys=True, data=True)} == {
        "feedforward", "skip", "feedback", "lateral", "readout"}


def test_dot_escapes_and_rejects_bad_rankdir():
    g = nx.MultiDiGraph(name='we"ird')
    g.add_node('a"b', role="input", shape=(1, 2, 2), rank=0)
    g.add_node("c", role="area", shape=(1, 2, 2), rank=1, tau=None)
    g.add_edge('a"b', "c", kind="feedforward", pipeline="identity", delay_ms=0.0, port="input")
    dot = graph_to_dot(g)
    assert 'digraph "we\\"ird"' in dot and '"a\\"b" -> "c"' in dot
    with pytest.raises(ValueError):
        graph_to_dot(g, rankdir="XY")


@pytest.mark.skipif(not (EXAMPLES / "ventral4.dyn").exists(), reason="shared examples absent")
def test_ventral4_example_feedback_add():
    path = EXAMPLES / "ventral4.dyn"
    g = dynvision_dsl.compile(path.read_text(), {"feedback": "add"}, file=str(path)).graph
    dot = graph_to_dot(g)
    assert dot == graph_to_dot(_reversed_copy(g))
    for area in ("V1", "V2", "V4", "IT"):
        assert f'"{area}" [label=' in dot
    assert "constraint=false" in _edge_line(dot, "IT", "V2")
    assert "style=dashed" in _edge_line(dot, "V2", "IT")
    assert 'label="maxpool 3/2 | conv 3"' in _edge_line(dot, "V1", "V2")


def test_short_pipeline():
    assert short_pipeline("conv(bias=True, dilation=1, groups=1, k=3, padding=1, stride=1, weightnorm=False)") \
        == ["conv(3)"]
    assert short_pipeline("conv(k=3, stride=2, padding=1, bias=False)") == ["conv(3, stride=2, bias=false)"]
    assert short_pipeline("maxpool(k=2, padding=0, stride=2) | conv(k=3)") == ["maxpool(2) | conv(3)"]
    assert short_pipeline("lateral(k=3, kind=full)") == ["lateral(full)"]
    assert short_pipeline("lateral(k=5, kind=local)") == ["lateral(local, k=5)"]
    assert short_pipeline("avgpool | linear(bias=True, n=10)") == ["avgpool | linear(10)"]
    assert short_pipeline("mystery(a=1) | adapt") == ["mystery(a=1) | adapt"]
    assert short_pipeline("") == []
    long = short_pipeline(" | ".join(["identity"] * 40), width=20, max_lines=3)
    assert len(long) == 3 and long[-1].startswith("… (+")


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".dot"])
def test_draw_graph_matplotlib(small, tmp_path, suffix):
    out = draw_graph(small.graph, tmp_path / f"g{suffix}", engine="matplotlib")
    data = out.read_bytes()
    assert data
    if suffix == ".png":
        assert data.startswith(PNG) and len(data) > 1000
    elif suffix == ".svg":
        assert b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")
    else:
        assert data.decode("utf-8") == graph_to_dot(small.graph, wrap=True)  # rows as in the drawings
    assert _no_temp_files(tmp_path)


def test_draw_graph_auto_engine(small, tmp_path):
    png = draw_graph(small.graph, tmp_path / "auto.png")  # graphviz when `dot` is on PATH
    svg = draw_graph(small.graph, tmp_path / "auto.svg")
    assert png.read_bytes().startswith(PNG)
    assert b"<svg" in svg.read_bytes()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")
def test_draw_graph_graphviz(small, tmp_path):
    png = draw_graph(small.graph, tmp_path / "gv.png", engine="graphviz")
    assert png.read_bytes().startswith(PNG)
    svg = draw_graph(small.graph, tmp_path / "gv.svg", engine="graphviz")
    assert b"V4" in svg.read_bytes()


def test_draw_graph_errors(small, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="use a .svg, .png, .pdf, .html or .dot"):
        draw_graph(small.graph, tmp_path / "g.jpg")
    with pytest.raises(ValueError):
        draw_graph(small.graph, tmp_path / "g.png", engine="nope")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="not on PATH"):
        draw_graph(small.graph, tmp_path / "g.png", engine="graphviz")
    assert not list(tmp_path.iterdir())


def test_draw_graph_matplotlib_is_deterministic(small, tmp_path):
    a = draw_graph(small.graph, tmp_path / "a.svg", engine="matplotlib").read_bytes()
    b = draw_graph(_reversed_copy(small.graph), tmp_path / "b.svg", engine="matplotlib").read_bytes()
    assert a == b


def test_twelve_area_chain_draws(tmp_path):
    g = dynvision_dsl.compile(chain_spec(12)).graph
    assert sum(1 for _, d in g.nodes(data=True) if d["role"] == "area") == 12
    png = draw_graph(g, tmp_path / "chain.png", engine="matplotlib")
    assert png.read_bytes().startswith(PNG)
    dot = graph_to_dot(g)
    assert all(f'"A{i}" [label=' in dot for i in range(1, 13))


def test_branching_graph_draws(tmp_path):
    """Areas of equal rank spread vertically, a lateral edge between two of them."""
    g = nx.MultiDiGraph(name="Branchy")
    g.add_node("img", role="input", shape=(3, 8, 8), rank=0)
    for name, rank in (("A", 1), ("B", 1), ("C", 1), ("D", 2)):
        g.add_node(name, role="area", shape=(4, 8, 8), rank=rank, tau="2 ms")
    g.add_node("readout", role="readout", shape=(2,), rank=3)
    for i, (u, v, kind) in enumerate([("img", "A", "feedforward"), ("img", "B", "feedforward"),
                                      ("img", "C", "feedforward"), ("A", "B", "lateral"), ("A", "D", "feedforward"),
                                      ("C", "D", "feedforward"), ("D", "B", "feedback"), ("D", "D", "lateral"),
                                      ("img", "D", "skip"), ("D", "readout", "readout")]):
        g.add_edge(u, v, key=i, index=i, kind=kind, pipeline="conv(k=1)", delay_ms=float(i % 3), port="input")
    assert draw_graph(g, tmp_path / "b.png", engine="matplotlib").read_bytes().startswith(PNG)
    assert '{ rank=same; "A"; "B"; "C"; }' in graph_to_dot(g)


def test_plot_responses(small, tmp_path):
    torch.manual_seed(0)
    with torch.no_grad():
        result = small.run(torch.randn(2, 3, 16, 16))
    out = plot_responses(result, tmp_path / "r.png", small.dt, small.idle, title="small")
    assert out.read_bytes().startswith(PNG)
    sub = plot_responses(result, tmp_path / "sub.png", small.dt, areas=["IT", "V1"])
    assert sub.read_bytes().startswith(PNG)
    with pytest.raises(KeyError, match="V9"):
        plot_responses(result, tmp_path / "bad.png", small.dt, areas=["V9"])
    with pytest.raises(ValueError):
        plot_responses(result, tmp_path / "r.svg", small.dt)
    assert _no_temp_files(tmp_path)


def test_plot_responses_with_silent_steps(tmp_path):
    m = dynvision_dsl.compile(SMALL.replace("idle  = 2", "idle  = 0").replace("linear(5)", "linear(5), delay 4 ms"))
    with torch.no_grad():
        result = m.run(torch.randn(1, 3, 16, 16))
    assert not bool(result.present["V2"].all())  # silent steps, drawn as gaps
    assert bool((result.logits[0] == 0).all(dim=1).any())  # a silent readout too
    out = plot_responses(result, tmp_path / "silent.png", m.dt, m.idle)
    assert out.read_bytes().startswith(PNG)


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]
    with atomic_open(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]
