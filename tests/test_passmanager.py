"""The PassManager (backend/passmanager.py): every pass timed and linted after, the graph
dumped after any named pass, and a failing pass named (with its step variant and spec line)
in a DynError, from the API and from `dynv compile`."""
import operator

import pytest
import torch.fx as fx

from dynvision_dsl import lower as lower_stage
from dynvision_dsl.backend.markers import as_map, keep_if_silent
from dynvision_dsl.backend.passes import NAMES, PIPELINE, REQUIRED
from dynvision_dsl.backend.passmanager import Pass, PassManager, UnknownPass, timing_table
from dynvision_dsl.cli import main
from dynvision_dsl.diagnostics import Diagnostic, DynError, Span
from dynvision_dsl.pipeline import build, dump_after, pass_reports

pytestmark = pytest.mark.backend

SPEC = """model Leaky
time { dt = 2 ms  steps = 6 }
input image [2, 8, 8]
param tau = 5 ms
area V1 [4] {
  tau * dr/dt = -r + input
  r = relu(r)
}
area V2 [4] {
  state k = 0
  tau * dr/dt = -r + input + rec
  k = r
}
image -> V1 : conv(3)
V1 -> V2 : conv(3), delay 2 ms
V2 -> V2.rec : conv(1), delay 4 ms
readout V2 : avgpool | linear(3)
"""


def _lowered(k: int = 0) -> fx.Graph:
    """Step variant k's graph as lowered, before any pass."""
    program, _ = build(SPEC, file="leaky.dyn")
    k = k % len(program.schedule.variants)
    graph, reports = lower_stage.step_graph(program.model, program.schedule, k, PassManager(()))
    assert reports == []
    return graph


def _explode(graph: fx.Graph) -> bool:
    """A pass that raises at the first node carrying a spec span."""
    for node in graph.nodes:
        if node.meta.get("span") is not None:
            raise ValueError(f"cannot rewrite {node.name}")
    return False


def _last_result(graph: fx.Graph) -> tuple[fx.Node, fx.Node]:
    """The output node and the last node it returns."""
    output = next(n for n in graph.nodes if n.op == "output")
    return output, [a for a in output.args[0] if isinstance(a, fx.Node)][-1]


def _misorder(graph: fx.Graph) -> bool:
    """A pass that moves the last result before its own arguments: the graph is broken."""
    _, last = _last_result(graph)
    next(iter(graph.nodes)).prepend(last)
    return True


def _repair(graph: fx.Graph) -> bool:
    """Undoes _misorder: the node goes back right before the output."""
    output, last = _last_result(graph)
    output.prepend(last)
    return True


def _with(monkeypatch, *extra: Pass) -> None:
    """The build's pipeline with `extra` passes after the required ones."""
    monkeypatch.setattr(lower_stage, "pipeline", lambda optimize=True: REQUIRED + extra + PIPELINE[len(REQUIRED):])


# ------------------------------------------------------------------- the manager
def test_every_pass_is_timed_and_reported_in_order_with_node_counts():
    graph = _lowered(-1)
    reports = PassManager(PIPELINE).run(graph, "_step_x")
    assert [r.name for r in reports] == list(NAMES)
    assert all(r.seconds >= 0 and r.lint_seconds > 0 and r.variant == "_step_x" and isinstance(r.changed, bool) for r in reports)
    assert all(a.nodes_after == b.nodes_before for a, b in zip(reports, reports[1:]))
    assert reports[-1].nodes_after == len(graph.nodes) < reports[0].nodes_before
    assert reports[0].changed and reports[1].changed  # silent reads dropped, markers resolved


def test_the_build_runs_every_pass_on_every_variant_and_keeps_the_reports():
    program, _ = build(SPEC)
    reports = pass_reports(program)
    assert len(reports) == len(NAMES) * len(program.steps)
    for step in program.steps:
        assert [r.name for r in step.reports] == list(NAMES) and {r.variant for r in step.reports} == {step.name}
        assert step.passes == {r.name: r.changed for r in step.reports}
    slow, _ = build(SPEC, optimize=False)
    assert [r.name for r in slow.steps[0].reports] == [p.name for p in REQUIRED]
    table = timing_table(reports).splitlines()
    assert table[0].split() == ["pass", "ms", "lint", "ms", "changed", "nodes", "before", "nodes", "after"]
    assert [row.split()[0] for row in table[1:]] == [*NAMES, "total"]


def test_the_graph_is_linted_after_each_pass_not_once_at_the_end():
    passes = REQUIRED + (Pass("misorder", _misorder), Pass("repair", _repair))
    with pytest.raises(DynError) as caught:
        PassManager(passes).run(_lowered(), "_step_0", "leaky.dyn", SPEC)
    (d,) = caught.value.diagnostics
    assert d.code == "E161" and d.message.startswith("pass misorder left a broken graph (step variant _step_0)")
    assert "was used before it has been defined" in d.message and "\n" not in d.message
    assert "--dump-after broadcast_unbatched" in d.hint  # the graph the pass got


def test_a_pass_that_raises_is_named_with_its_variant_and_spec_line():
    with pytest.raises(DynError) as caught:
        PassManager((Pass("explode", _explode),)).run(_lowered(), "_step_0", "leaky.dyn", SPEC)
    (d,) = caught.value.diagnostics
    assert d.code == "E160"
    assert d.message == ("pass explode failed (step variant _step_0) at node 'image_to_v1_conv': "
                         "ValueError: cannot rewrite image_to_v1_conv")
    assert (d.span.file, d.span.line) == ("leaky.dyn", 14)  # image -> V1 : conv(3)
    assert "leaky.dyn:14:" in caught.value.render() and "image -> V1 : conv(3)" in caught.value.render()


def test_a_pass_that_reports_a_spec_error_is_not_rewrapped():
    def refuse(graph):
        raise DynError([Diagnostic("error", "no", Span("leaky.dyn", 3, 1, 3, 2), code="E001")])

    with pytest.raises(DynError) as caught:
        PassManager((Pass("refuse", refuse),)).run(_lowered(), "_step_0")
    assert [d.code for d in caught.value.diagnostics] == ["E001"]


def test_a_pass_must_say_whether_it_changed_the_graph():
    with pytest.raises(DynError) as caught:
        PassManager((Pass("mute", lambda g: None),)).run(_lowered(), "_step_1", "leaky.dyn")
    (d,) = caught.value.diagnostics
    assert d.code == "E162" and d.message == "pass mute returned NoneType, not whether it changed the graph (step variant _step_1)"


def test_a_failing_pass_in_a_build_names_the_variant(monkeypatch):
    _with(monkeypatch, Pass("explode", _explode))
    with pytest.raises(DynError) as caught:
        build(SPEC, file="leaky.dyn")
    assert caught.value.diagnostics[0].message.startswith("pass explode failed (step variant _step_0)")


def test_an_unknown_pass_name_is_refused_with_a_suggestion():
    with pytest.raises(UnknownPass, match=r"unknown pass 'simplfy' \(did you mean 'simplify'\?\)"):
        PassManager(PIPELINE, stop_after="simplfy")


# ------------------------------------------------------------------------ dumps
@pytest.mark.parametrize("name", NAMES)
def test_dump_after_each_pass_stops_there(name):
    dumps = dump_after(SPEC, name, file="leaky.dyn")
    program, _ = build(SPEC)
    assert [step for step, *_ in dumps] == [s.name for s in program.steps]
    for (_, graph, reports), step in zip(dumps, program.steps):
        assert [r.name for r in reports] == list(NAMES[:NAMES.index(name) + 1])
        targets = {n.target for n in graph.nodes}
        assert keep_if_silent not in targets                      # drop_silent runs first
        assert (as_map in targets) == (name == "drop_silent")     # broadcast_unbatched resolves them
        assert len(graph.nodes) == reports[-1].nodes_after
        if name == NAMES[-1]:
            assert str(graph) == str(step.graph)                  # after the last pass: the build's graph


def test_dump_after_a_pass_on_the_unoptimised_pipeline_must_be_a_required_one():
    assert dump_after(SPEC, "broadcast_unbatched", optimize=False)
    with pytest.raises(UnknownPass):
        dump_after(SPEC, "simplify", optimize=False)


# -------------------------------------------------------------------------- CLI
@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaky.dyn").write_text(SPEC)
    return "leaky.dyn"


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_cli_dump_after_prints_every_variant_and_writes_nothing(spec, capsys, tmp_path):
    rc, out, err = _cli(capsys, "compile", spec, "--dump-after", "fuse_leaky_update")
    assert rc == 0 and err == ""
    program, _ = build(SPEC)
    heads = [line for line in out.splitlines() if line.startswith("# ")]
    assert [h.split()[1:3] for h in heads] == [[s.name, "after"] for s in program.steps]
    assert all(h.split()[3] == "fuse_leaky_update" for h in heads)
    assert "call_function[target=torch.lerp]" in out and "# leaky.dyn:6" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaky.dyn"]


def test_cli_dump_after_prints_the_specs_warnings_as_compile_does(tmp_path, capsys, monkeypatch):
    from dynvision_dsl.diagnostics.catalogue import CATALOGUE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.dyn").write_text(CATALOGUE["W001"].wrong)  # an area no input reaches
    rc, out, err = _cli(capsys, "compile", "w.dyn", "--dump-after", "simplify")
    assert rc == 0 and out.startswith("# _step_0 after simplify")
    assert err.startswith("w.dyn:1:6: warning[W001]: no connection path from 'image' reaches area V2")
    rc, _, compiled = _cli(capsys, "compile", "w.dyn", "-o", "m.py")
    assert rc == 0 and compiled == err  # the same diagnostics, whichever way the spec is compiled


def test_cli_time_passes_prints_the_table(spec, capsys, tmp_path):
    rc, out, _ = _cli(capsys, "compile", spec, "-o", "m.py", "--time-passes")
    assert rc == 0 and (tmp_path / "m.py").exists()
    lines = out.splitlines()
    assert lines[0] == "wrote m.py" and lines[1].split()[:5] == ["pass", "ms", "lint", "ms", "changed"]
    assert [line.split()[0] for line in lines[2:]] == [*NAMES, "total"]


@pytest.mark.parametrize("argv, message", [
    (("--dump-after", "simplfy"), "dynv compile: unknown pass 'simplfy' (did you mean 'simplify'?) for --dump-after; "
                                  "the passes are " + ", ".join(NAMES)),
    (("--dump-after", "nothing_like_it"), "dynv compile: unknown pass 'nothing_like_it' for --dump-after; "
                                          "the passes are " + ", ".join(NAMES)),
    ((), "dynv compile: -o/--output FILE is required (or --dump-after PASS to print the graphs instead)"),
    (("--dump-after", "simplify", "-o", "m.py"), "dynv compile: --dump-after prints the graphs and writes no module: "
                                                 "drop -o/--output"),
])
def test_cli_bad_flags_are_one_line_and_exit_2(spec, capsys, tmp_path, argv, message):
    rc, out, err = _cli(capsys, "compile", spec, *argv)
    assert (rc, out, err) == (2, "", message + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaky.dyn"]


def test_cli_a_failing_pass_is_a_diagnostic_not_a_traceback(spec, capsys, monkeypatch, tmp_path):
    _with(monkeypatch, Pass("explode", _explode))
    rc, out, err = _cli(capsys, "compile", spec, "-o", "m.py")
    assert rc == 1 and out == ""
    assert err.startswith("leaky.dyn:14:1: error[E160]: pass explode failed (step variant _step_0)")
    assert not (tmp_path / "m.py").exists()
