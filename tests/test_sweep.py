"""`dynv sweep`: variant names, the config's quoting, the fixed Snakefile, refusals, and (slow) a
2-variant x 2-protocol sweep run end to end by Snakemake, then rerun with nothing to do."""
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dynvision_dsl.cli import main
from dynvision_dsl.science.sweep import (SNAKEFILE, SweepError, expand, make_plan, parse_grid, to_yaml,
                                         variant_names, write_sweep)
from dynvision_dsl.science.sweep.plan import config

from conftest import ROOT

NASTY = ["1 ms", "a/b", "a-b", "A/B", "x\ny", 'q"uote\\', "$(rm -rf ~)", "{braces}", "ünï", "\u2028sep", "\x7f",
         "😀", "", "yes", "on: x", "- dash", "# hash", "..", "\ufeffbom"]


def _snakemake() -> list[str] | None:
    if importlib.util.find_spec("snakemake") is not None:
        return [sys.executable, "-m", "snakemake"]
    found = os.environ.get("SNAKEMAKE") or shutil.which("snakemake")
    return [found] if found else None


def test_variant_names_are_safe_and_unique_even_ignoring_case():
    points = [[("tau", v)] for v in NASTY if v] + [[("tau", "a/b"), ("k", "1 ms")]]
    names = variant_names(points)
    assert len({n.casefold() for n in names}) == len(names)
    for name in names:
        assert name and len(name) <= 80 and not name.startswith((".", "-"))
        assert all(c.isascii() and (c.isalnum() or c in "._+-") for c in name), name
    assert variant_names([[("tau", "1 ms")]]) == ["tau-1-ms"]
    assert variant_names([[("t", "x" * 200)]])[0].startswith("t-xxx") and len(variant_names([[("t", "x" * 200)]])[0]) == 80


def test_grid_is_parsed_and_expanded_in_order():
    assert parse_grid("tau = 5 ms, 10 ms") == ("tau", ["5 ms", "10 ms"])
    variants = expand([("a", ["1", "2"]), ("b", ["x", "y"])])
    assert [v.label for v in variants] == ["a=1 b=x", "a=1 b=y", "a=2 b=x", "a=2 b=y"]
    assert variants[0].params == {"a": "1", "b": "x"} and variants[0].name == "a-1__b-x"
    for bad in ("tau", "=1,2", "tau=", "tau=1,1"):
        with pytest.raises(SweepError):
            parse_grid(bad)
    with pytest.raises(SweepError, match="twice"):
        expand([("a", ["1"]), ("a", ["2"])])
    with pytest.raises(SweepError, match="both --grid and --set"):
        make_plan(ROOT / "specs" / "dyrcnn_x4.dyn", [("tau", ["5 ms"])], [], sets={"tau": "2 ms"})


def test_config_yaml_reads_back_exactly_whatever_the_values():
    yaml = pytest.importorskip("yaml")
    plan = make_plan("x.dyn", [("v", [n for n in NASTY if n])], ["duration"], sets={"k": "ü\t\"'"},
                     train_args=["--data", "folder:my images/ä"], experiment_args={"duration": ["--levels", "1,2"]})
    data = config(plan)
    assert yaml.safe_load(to_yaml(data)) == data


def test_the_snakefile_holds_no_user_text(tmp_path):
    plan = make_plan(tmp_path / "s.dyn", [("tau", ["$(touch pwned)", "{x}", "a'b"])], ["interval"],
                     train_args=["--data", "folder:`id`"])
    write_sweep(plan, tmp_path / "sw")
    assert (tmp_path / "sw" / "Snakefile").read_text() == SNAKEFILE
    assert "pwned" not in SNAKEFILE and "pwned" in (tmp_path / "sw" / "config.yaml").read_text()


def _tiny(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.dyn"
    spec.write_text((ROOT / "tests" / "test_train.py").read_text().split('TINY = """', 1)[1].split('"""', 1)[0])
    return spec


def test_cli_writes_refuses_an_existing_sweep_and_rewrites_with_force(tmp_path, capsys):
    spec, out = _tiny(tmp_path), tmp_path / "sw"
    args = ["sweep", str(spec), "--grid", "drop=0,0.3", "--experiment", "duration", "--epochs", "2",
            "--lr", "0.01", "--out", str(out)]
    assert main(args) == 0
    text = (out / "config.yaml").read_text()
    assert '- "--epochs"\n  - "2"' in text
    before = (out / "config.yaml").stat().st_mtime_ns
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "already holds a sweep" in err and "--force" in err and "Traceback" not in err
    assert (out / "config.yaml").stat().st_mtime_ns == before
    assert main(args[:-2] + ["--epochs", "3", "--out", str(out), "--force"]) == 0
    assert '"3"' in (out / "config.yaml").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["Snakefile", "config.yaml"]  # no temporaries left


@pytest.mark.parametrize("extra, message", [
    (["--grid", "nosuch=1,2"], "does not compile"),
    (["--grid", "drop=0", "--experiment-args", "interval=--levels 1"], "--experiment-args needs PROTOCOL=FLAGS"),
    (["--grid", "drop=0", "--experiment", "duration", "--experiment-args", "duration=--bogus 1"], "has no --bogus"),
    (["--grid", "drop=0", "--experiment", "duration", "--experiment-args", "duration=--out x"], "gets from the sweep"),
    (["--grid", "drop=0", "--experiment", "duration", "--experiment-args", "duration=--levels 'open"],
     "--experiment-args duration"),
    (["--grid", "drop"], "--grid needs NAME=V1,V2"),
])
def test_cli_refusals_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "sw"
    assert main(["sweep", str(_tiny(tmp_path)), *extra, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_needs_a_spec_and_out(capsys):
    assert main(["sweep", "--grid", "a=1"]) == 1
    assert "needs a spec and --out" in capsys.readouterr().err


def test_train_flags_pass_through_verbatim(tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", str(_tiny(tmp_path)), "--grid", "drop=0", "--epochs", "2", "--batch", "4",
                 "--data", "folder:a b", "--out", str(out)]) == 0
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train_args"] == ["--data", "folder:a b", "--epochs", "2", "--batch", "4"]
    assert cfg["cwd"] == os.getcwd() and cfg["spec"] == str((tmp_path / "tiny.dyn").resolve())


@pytest.mark.slow
def test_a_sweep_runs_through_snakemake_and_reruns_nothing(tmp_path, monkeypatch):
    snakemake = _snakemake()
    if snakemake is None:
        pytest.skip("snakemake is not installed (pip install snakemake, or the dev extra)")
    sys.path.insert(0, str(ROOT / "tests"))
    from test_train import _images

    monkeypatch.chdir(tmp_path)  # relative paths in the flags mean what they mean here
    _images(tmp_path / "images", n=8)
    spec, out = _tiny(tmp_path), tmp_path / "sw"
    quick = "--levels 1,2 --n-images 2 --intro 2 --batch 8 --images folder:images"
    assert main(["sweep", str(spec), "--grid", "drop=0,0.3", "--experiment", "duration", "--experiment",
                 "interval", "--experiment-args", f"duration={quick}", "--experiment-args",
                 f"interval={quick} --on 2", "--data", "folder:images", "--epochs", "1", "--batch", "8",
                 "--out", "sw"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = [*snakemake, "--snakefile", str(out / "Snakefile"), "--cores", "2"]
    first = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["variant"], r["protocol"]) for r in rows] == [
        ("drop-0", "duration"), ("drop-0", "interval"), ("drop-0.3", "duration"), ("drop-0.3", "interval")]
    assert all(0 <= float(r["best_test_acc"]) <= 1 for r in rows)
    assert rows[0]["V1 normalised@2"] and rows[1]["V1 ratio@1"] and not rows[1]["V1 normalised@2"]
    assert {p.name for p in (out / "plots").iterdir()} == {"accuracy.png", "duration.png", "interval.png"}
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and ".snakemake" not in p.parts}
    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_every_kind_of_train_option_is_given_again_as_typed():
    import argparse

    from dynvision_dsl.cli.sweep import _words

    p = argparse.ArgumentParser()
    acts = {a.dest: a for a in [p.add_argument("--tbptt", type=int), p.add_argument("--augment", action="store_true"),
                                p.add_argument("--lr-scale", action="append"), p.add_argument("-v", action="count"),
                                p.add_argument("--amp", action=argparse.BooleanOptionalAction),
                                p.add_argument("--pair", nargs=2)]}
    ns = p.parse_args(["--tbptt", "4", "--augment", "--lr-scale", "recurrence=0.2", "--lr-scale", "feedback=0.5",
                       "-vv", "--no-amp", "--pair", "a b", "c"])
    words = [w for dest, a in acts.items() for w in _words(a, getattr(ns, dest))]
    assert words == ["--tbptt", "4", "--augment", "--lr-scale", "recurrence=0.2", "--lr-scale", "feedback=0.5",
                     "-v", "-v", "--no-amp", "--pair", "a b", "c"]
    assert p.parse_args(words) == ns
