"""Stage 3: the networkx graph and its edge kinds."""
import pytest

import dynvision_dsl as dd
from dynvision_dsl.pipeline import build

from conftest import ROOT

pytestmark = pytest.mark.frontend


def test_x4_graph_nodes_edges_and_kinds():
    program, _ = build((ROOT / "specs" / "dyrcnn_x4.dyn").read_text(), {"feedback": "add", "size": 32})
    g = program.graph
    assert set(g.nodes) == {"image", "V1", "V2", "V4", "IT", "readout"}
    assert g.nodes["V4"]["shape"] == (121, 8, 8)
    assert g.nodes["V1"]["tau"] == "5 ms"
    assert g.nodes["V1"]["present_from"] == 0 and g.nodes["V1"]["solver"] == "euler"
    assert "tau * dr/dt = -r + input" in g.nodes["V1"]["equations"]
    kinds = {(u, v): d["kind"] for u, v, d in g.edges(data=True)}
    assert kinds[("image", "V1")] == "feedforward"
    assert kinds[("V1", "V2")] == "feedforward"
    assert kinds[("V1", "V1")] == "lateral"
    assert kinds[("V1", "V4")] == "skip"
    assert kinds[("V4", "V1")] == "feedback"
    assert kinds[("IT", "readout")] == "readout"
    edge = next(d for u, v, d in g.edges(data=True) if (u, v) == ("V1", "V1"))
    assert edge["delay_steps"] == 3 and edge["delay_ms"] == 6.0
    assert "lateral" in edge["pipeline"]


def test_model_exposes_graph():
    model = dd.compile((ROOT / "specs" / "dyrcnn_x4.dyn").read_text(), {"size": 16, "steps": 2})
    assert model.graph.nodes["IT"]["role"] == "area"
