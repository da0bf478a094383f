"""Stage 6: the generated steps read like a hand-written model (codenames.py): values named
after their area and quantity, numbers from spec formulas as named constants with the formula,
`# file:line (area)` comments, and one StepOutputs named tuple returned by every variant."""
import ast
import io
import re
import tokenize

import pytest
import torch

import dynvision_dsl as dd
from dynvision_dsl import codenames
from dynvision_dsl.codenames import Constant, Namespace, identifier

from conftest import ROOT, SPECS

pytestmark = pytest.mark.backend

# fx's automatic names, which the printer used before: `add_6`, `lerp_2`, `max_pool2d_1`, ...
FX_NAMES = re.compile(r"(add|sub|mul|truediv|neg|relu|lerp|exp|tanh|sigmoid|max_pool2d|avg_pool2d|"
                      r"adaptive_avg_pool2d|interpolate|flatten|unflatten|size|new_zeros|type_as|expand_as|"
                      r"clamp|where|randn|noise_sample|phi1|[a-z]+_d\d+)(_\d+)?")
COMMENT = re.compile(r"# (?P<file>\S+):(?P<line>\d+) \((?P<area>[^)]*)\): (?P<text>.*)")

SMALL = """\
param size = 8
param tau = 5 ms
param gain = 0.5
time { dt = 2 ms  steps = 3 }
input image [3, size, size]
area A [4] { tau * dr/dt = -r + input  r = relu(r) + gain * r }
image -> A : conv(k=3) as M
A -> A : scale, delay 2 ms
readout A : avgpool | flatten | linear(5)
"""


def _module_parts(path):
    """(module AST, areas, module-path identifiers, step functions) of a generated module."""
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name != "StepOutputs"
               and any(isinstance(b, ast.FunctionDef) and b.name == "_simulate" for b in n.body))
    table = {t.targets[0].id: t.value for t in cls.body if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)}
    areas = ast.literal_eval(table["areas"])
    paths = {identifier(c.args[1].value) for c in ast.walk(cls) if isinstance(c, ast.Call)
             and getattr(c.func, "id", None) == "_install"}
    steps = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name.startswith("_step_")]
    return tree, cls, table, areas, paths, steps


def _scheme_ok(name: str, areas, inputs, paths) -> bool:
    """A step's name follows codenames' scheme: an area's (`V1_...`), an input's, the logits',
    the frame's, a module path's (or its parameter's: `addskip_IT_conv_weight`, the centre tap's
    weight), or one of those with a uniquifying suffix."""
    base = re.sub(r"_\d+$", "", name)
    prefixes = [identifier(a) + "_" for a in areas] + [identifier(i) + "_delayed_" for i in inputs]
    prefixes += [p + "_" for p in paths if name in (p + "_weight", p + "_bias")]
    return (name.startswith(tuple(prefixes)) or base in paths or name in paths or base == "logits"
            or name.startswith("logits_") or name in ("x", "time_ms") or name.startswith("x_"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_value_in_the_zoo_is_named_after_its_area_or_module(spec):
    _, _, table, areas, paths, steps = _module_parts(ROOT / "generated" / f"{spec.stem}.py")
    inputs = ast.literal_eval(table["inputs"])
    assert steps
    for step in steps:
        names = [a.arg for a in step.args.args[1:]] + [t.id for s in ast.walk(step) if isinstance(s, ast.Assign)
                                                       for t in s.targets]
        assert names
        for name in names:
            assert not FX_NAMES.fullmatch(name), f"{spec.stem}.{step.name}: fx name {name}"
            assert _scheme_ok(name, areas, inputs, paths), f"{spec.stem}.{step.name}: {name}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_step_comment_cites_file_line_and_area(spec):
    text = (ROOT / "generated" / f"{spec.stem}.py").read_text()
    lines = spec.read_text().split("\n")
    _, _, _, areas, _, steps = _module_parts(ROOT / "generated" / f"{spec.stem}.py")
    body = text[text.index("    def _step_0"):]
    comments = [c.strip() for c in body.split("\n") if c.strip().startswith("#")]
    assert comments
    for c in comments:
        m = COMMENT.fullmatch(c)
        assert m, c
        assert m["file"] == f"specs/{spec.name}"
        assert m["area"] in areas or m["area"].startswith("readout"), c
        assert m["text"] == lines[int(m["line"]) - 1].strip()


def test_the_steady_step_of_x4_reads_like_the_model():
    text = (ROOT / "generated" / "dyrcnn_x4.py").read_text()
    assert "    V1_dt_over_tau = 0.4  # dt / tau = 2 ms / 5 ms (specs/dyrcnn_x4.dyn:31)\n" in text
    steady = text[text.index("    def _step_2"):]
    for line in ("def _step_2(self, x, V1_r_delayed_3, V2_r_delayed_3, V4_r_delayed_3, IT_r_delayed_3, V1_r_prev,",
                 "# specs/dyrcnn_x4.dyn:31 (V4): tau * dr/dt = -r + input",
                 "V4_input = add_into(V4_input_sum, V4_from_V1)",
                 "V4_r = euler_relu_(V4_r_prev, V4_input, self.V4_dt_over_tau)",
                 "V2_from_V1_max_pool2d = lean_max_pool2d(V1_r, 3, 2, 1)",
                 "V1_recurrence = self.V1.recurrence.conv(V1_r_delayed_3)",
                 "return StepOutputs(V1_r=V1_r, V2_r=V2_r, V4_r=V4_r, IT_r=IT_r, V1=V1_r, V2=V2_r, V4=V4_r, IT=IT_r,"):
        assert line in steady, line
    assert not re.search(r"\b0\.4\b", steady)  # the leak is the named constant, not a bare literal


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_variant_returns_the_one_step_outputs_tuple(spec):
    tree, cls, _, _, _, steps = _module_parts(ROOT / "generated" / f"{spec.stem}.py")
    (outputs,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "StepOutputs"]
    fields = [a.target.id for a in outputs.body if isinstance(a, ast.AnnAssign)]
    assert len(set(fields)) == len(fields) and not any(f.startswith("_") for f in fields)
    for step in steps:
        (ret,) = [s for s in ast.walk(step) if isinstance(s, ast.Return)]
        assert isinstance(ret.value, ast.Call) and ret.value.func.id == "StepOutputs"
        assert [k.arg for k in ret.value.keywords] == fields


def test_the_loop_gets_named_tuples_and_the_constants_are_the_very_numbers():
    """A step returns StepOutputs (fields by name, and by position for the loop); putting each
    named constant's literal back and returning plain tuples gives bitwise the same run."""
    source = dd.emit(SMALL, file="small.dyn")
    assert re.search(r"    A_dt_over_tau = 0\.4  # dt / tau = 2 ms / 5 ms \(small\.dyn:6\)\n", source)
    assert "    A_gain = 0.5  # gain = 0.5 (small.dyn:6)\n" in source
    plain = source
    for name, value in re.findall(r"^    (A_\w+) = ([0-9.e-]+)  #", source, re.M):
        plain = plain.replace(f"self.{name}", value)
    plain = plain.replace("return StepOutputs(", "return tuple_of(")
    assert plain != source and "self.A_dt_over_tau" not in plain and "self.A_gain" not in plain
    models = []
    for text in (source, plain):
        namespace = {"tuple_of": lambda **kw: tuple(kw.values())}
        exec(compile(text, "generated.py", "exec"), namespace)  # noqa: S102 - emitted by this project
        torch.manual_seed(0)
        models.append(namespace["Small"]())
    x = torch.rand(2, 3, 8, 8)
    named, positional = models
    out = named._step_0(x)
    assert type(out).__name__ == "StepOutputs" and out.A_r is out[0] and out.logits is out[-1]
    with torch.no_grad():
        assert torch.equal(named(x), positional(x))


# ------------------------------------------------------------------ odd names
ODD = ["None", "self", "torch", "StepOutputs", "x", "logits", "F", "getattr", "def_"]
ODD_MODULES = ["torch", "StepOutputs", "self", "getattr", "x", "F", "A_r", "logits", "M"]


@pytest.mark.parametrize("area, module", list(zip(ODD, ODD_MODULES)))
def test_odd_area_and_module_names_neither_shadow_nor_break_anything(area, module):
    """Names that are Python builtins, the module's globals or the method's `self` run
    exactly like a plain spec (same seed, same weights, bitwise equal logits)."""
    odd = SMALL.replace("A", area).replace("as M", f"as {module}")
    torch.manual_seed(0)
    reference = dd.compile(SMALL)
    torch.manual_seed(0)
    model = dd.compile(odd)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_a_hostile_file_name_stays_inside_the_comments_it_is_cited_in(tmp_path, monkeypatch):
    """The file name is in every step comment and every constant's comment now: it stays
    inside comments and string literals (tokenized), and executing the module runs nothing."""
    monkeypatch.chdir(tmp_path)
    name = 'a"\n__import__("os").system("touch pwned")\n#\'\'\'.dyn'
    source = dd.emit("model Small\n" + SMALL, file=name)  # the class keeps its name
    assert source.isascii()
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    hits = [t for t in tokens if "pwned" in t.string]
    assert len(hits) > 5 and {t.type for t in hits} <= {tokenize.COMMENT, tokenize.STRING}
    assert any(t.type == tokenize.COMMENT and t.line.startswith("    A_dt_over_tau = 0.4  # ") for t in hits)
    exec(compile(source, "generated.py", "exec"), {})  # noqa: S102
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------- codenames
def test_a_name_is_reused_once_free_and_suffixed_only_while_taken():
    scope = Namespace()
    assert scope.bind("V1_r", "a") == "V1_r"
    assert scope.bind("V1_r", "b") == "V1_r_2"                    # `a` is still read
    assert scope.bind("V1_r", "c", free=lambda old: old == "a") == "V1_r"
    assert scope.bind("torch", "d") == "torch_2" and scope.bind("self", "e") == "self_2"


def test_identifiers_and_terms():
    assert identifier("classifier.2") == "classifier_2" and identifier("2x") == "_2x"
    assert identifier("\u210cx") == "_x"                           # ASCII: no NFKC folding
    assert codenames.term("V2", "input", "V1") == "V2_from_V1"
    assert codenames.term("V1", "input", "V1") == "V1_recurrence"
    assert codenames.term("V1", "fb", "V4") == "V1_fb_from_V4"
    assert codenames.term("V1", "input", "V1.a") == "V1_recurrence_a"


def test_constants_keep_their_formula_through_arithmetic_and_folding():
    import operator

    dt, tau = Constant(2.0, "dt"), Constant(5.0, "tau", where="x.dyn:3")
    step = codenames.folded(operator.truediv, 0.4, (dt, tau))
    assert (step, step.formula, step.values, step.where) == (0.4, "dt / tau", "2 / 5", "x.dyn:3")
    assert repr(step) == "0.4" and hash(step) == hash(0.4)
    assert (dt * 0.5 / tau).formula == "(dt * 0.5) / tau"
    assert codenames.folded(torch.exp, 0.67, (-dt / tau,)).formula == "exp(-dt / tau)"
    assert codenames.constant_name("V1", "dt / tau") == "V1_dt_over_tau"
    assert not Constant(3.0, "3").named() and Constant(3.0, "w_a").named()
    assert codenames.folded(operator.mul, 6.0, (2.0, 3.0)) == 6.0 and not isinstance(
        codenames.folded(operator.mul, 6.0, (2.0, 3.0)), Constant)


EXPONENTIAL = """\
param tau = 5 ms
time { dt = 2 ms  steps = 3 }
input image [3, 8, 8]
area A [4] { solver exponential
  tau * dr/dt = -r + input }
image -> A : conv(k=3)
readout A : avgpool | flatten | linear(5)
"""


def test_the_exponential_solvers_factors_are_named_with_their_formula():
    source = dd.emit(EXPONENTIAL, file="e.dyn")
    assert "    A_r_decay = 0.6703200460356393  # exp(a * dt / tau) = exp(-1 * 2 ms / 5 ms) (e.dyn:5)\n" in source
    assert "A_r_prod = A_r_prev * self.A_r_decay" in source and "self.A_r_gain" in source


def test_a_number_the_checker_made_is_not_named_after_the_text_at_its_span():
    """The exponential split's -1 of `-r` carries the span of `r`: it is no param, so it is
    not a constant `A_r` (before: `self.V2_minus_r` in the shared stages example)."""
    trainable = EXPONENTIAL.replace("param tau = 5 ms\n", "").replace("{ solver exponential", "{\n  param tau = 5 ms trainable\n  solver exponential")
    source = dd.emit(trainable, file="e.dyn")
    assert "self.A.tau" in source and "_minus_r" not in source and "self.A_r " not in source


def test_a_constant_survives_copy_and_pickle():
    """A step graph (fx) holding a Constant can be deep-copied or pickled (it raised: __new__
    wants the formula), and keeps its formula and name."""
    import copy
    import pickle

    c = Constant(0.4, "dt / tau", "2 / 5", "x.dyn:3", "r_gain")
    for d in (copy.deepcopy(c), pickle.loads(pickle.dumps(c))):
        assert type(d) is Constant and d == 0.4 and (d.formula, d.values, d.where, d.label) == (
            "dt / tau", "2 / 5", "x.dyn:3", "r_gain")
