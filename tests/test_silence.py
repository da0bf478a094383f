"""One set of silence rules (middle/silence.py): the schedule's presence and the drop_silent
pass agree on every spec, step by step, and the rules themselves say what LANGUAGE.md §6 says."""
from pathlib import Path

import pytest

from conftest import SPECS, shared_examples
from dynvision_dsl.middle import silence
from dynvision_dsl.pipeline import build

pytestmark = pytest.mark.backend

HERE = Path(__file__).resolve().parent
CORPUS = SPECS + sorted((HERE / "valid").glob("*.dyn")) + shared_examples()


def test_the_rules():
    assert silence.present("add", [False, True]) and not silence.present("add", [False, False])
    assert silence.present("sub", [True, False])
    assert not silence.present("mul", [True, False]) and silence.present("relu", [True])
    assert silence.present("noise", [])                     # nothing to wait for
    assert silence.port_present([False, False, True]) and not silence.port_present([])
    assert silence.assigned(True) == "value" and silence.assigned(False) == "old"
    assert silence.assigned_present(False, True) and not silence.assigned_present(False, False)
    assert silence.integrated_present(False, True) and not silence.integrated_present(False, False)


def _expected(program, t: int) -> set[tuple[str, str]]:
    """What the schedule says step t returns present: area outputs, states after it, logits."""
    s, model = program.schedule, program.model
    after = s.variants[s.variant(t + 1)].states  # the states the next step starts from
    out = {("out", a) for a in s.order if s.present(a, t)}
    out |= {("state", f"{a}.{v}") for (a, v), p in zip(s.state_keys, after) if p}
    for r in model.readouts:
        first = s.term_present_from[r.index]
        if first is not None and t >= first:
            out.add(("logits", r.name))
    return out


def _left(program, k: int) -> set[tuple[str, str]]:
    """What drop_silent left non-None in step variant k's outputs (variables aside)."""
    graph = program.steps[k].graph
    (output,) = [n for n in graph.nodes if n.op == "output"]
    return {label for label, arg in zip(program.outputs, output.args[0]) if arg is not None and label[0] != "var"}


@pytest.mark.parametrize("spec", CORPUS, ids=[f"{p.parent.name}/{p.name}" for p in CORPUS])
def test_schedule_and_drop_silent_agree(spec):
    program, _ = build(spec, optimize=False)  # the required passes only: drop_silent decides
    s = program.schedule
    for t in range(len(s.variant_of)):
        k = s.variant(t)
        assert _left(program, k) == _expected(program, t), f"step {t} (variant _step_{k})"
