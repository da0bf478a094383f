"""A sweep as a Snakemake workflow: DIR/Snakefile (fixed text, the same for every sweep) and
DIR/config.yaml (the plan). The Snakefile holds no user text: every spec path, value and flag is
read from `config[...]` and reaches a shell only through `shlex.quote`.

    write_sweep(plan, "runs/sweep")   # then: snakemake --snakefile runs/sweep/Snakefile --cores 4
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ...util.files import OutputError, atomic_targets, check_target
from .plan import Plan, SweepError, config

SNAKEFILE = '''\
# A sweep written by `dynv sweep`: train every variant, run its experiments, summarise them.
# Everything it runs comes from config.yaml beside this file: edit that, not this.
#   snakemake --snakefile DIR/Snakefile --cores 4                  # on this machine
#   snakemake --snakefile DIR/Snakefile --executor slurm --jobs 50  # snakemake-executor-plugin-slurm
#   snakemake --snakefile DIR/Snakefile --profile PROFILE           # any executor, resources per rule
# A finished variant (its outputs exist and are newer than the spec) is not run again.
import json
import re
import shlex
from pathlib import Path

SWEEP = Path(workflow.basedir)
configfile: str(SWEEP / "config.yaml")
workdir: str(SWEEP)

VARIANTS = list(config["variants"])
PROTOCOLS = list(config["experiments"])


def _choice(names):
    """A wildcard pattern matching exactly these names."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    variant=_choice(VARIANTS),
    protocol=_choice(PROTOCOLS),


def _command(*args):
    """A shell command line, run where `dynv sweep` was (relative paths in the flags mean what they
    meant there), in which every argument is one quoted word."""
    return f"cd {shlex.quote(config['cwd'])} && " + " ".join(shlex.quote(str(a)) for a in args)


def _train(wildcards):
    params = {**config["sets"], **config["variants"][wildcards.variant]["params"]}
    sets = [w for name, value in params.items() for w in ("--set", f"{name}={value}")]
    return _command(*config["dynv"], "train", config["spec"], *sets, *config["train_args"],
                    "--out", SWEEP / "runs" / wildcards.variant, "--force", "--no-progress")


def _experiment(wildcards):
    return _command(*config["dynv"], "experiment", wildcards.protocol, config["spec"],
                    "--checkpoint", SWEEP / "runs" / wildcards.variant / "best.pt",
                    *config["experiment_args"].get(wildcards.protocol, []),
                    "--out", SWEEP / "experiments" / wildcards.variant / wildcards.protocol, "--force")


def _summary(wildcards):
    plan = {k: config[k] for k in ("grid", "variants", "experiments")}
    return _command(*config["dynv"], "sweep", "--summarize", SWEEP, "--plan", json.dumps(plan))


localrules: all, summary

rule all:
    input: "summary.csv"

rule train:
    input: spec=config["spec"]
    output: best="runs/{variant}/best.pt", metrics="runs/{variant}/metrics.csv", info="runs/{variant}/run.json"
    params: cmd=_train
    log: "logs/train-{variant}.log"
    threads: config["threads"]["train"]
    resources: **config["resources"]["train"]
    shell: "({params.cmd}) > {log:q} 2>&1"

rule experiment:
    input: spec=config["spec"], checkpoint="runs/{variant}/best.pt"
    output: "experiments/{variant}/{protocol}/{protocol}.csv"
    params: cmd=_experiment
    log: "logs/experiment-{variant}-{protocol}.log"
    threads: config["threads"]["experiment"]
    resources: **config["resources"]["experiment"]
    shell: "({params.cmd}) > {log:q} 2>&1"

rule summary:
    input:
        runs=expand("runs/{variant}/run.json", variant=VARIANTS),
        experiments=expand("experiments/{variant}/{protocol}/{protocol}.csv", variant=VARIANTS, protocol=PROTOCOLS),
    output: "summary.csv", "plots/accuracy.png", expand("plots/{protocol}.png", protocol=PROTOCOLS)
    params: cmd=_summary
    log: "logs/summary.log"
    threads: config["threads"]["summary"]
    resources: **config["resources"]["summary"]
    shell: "({params.cmd}) > {log:q} 2>&1"
'''


def _printable(ch: str) -> bool:
    """Whether a YAML reader takes `ch` inside a double-quoted scalar as itself (no break, no control)."""
    code = ord(ch)
    if 0x20 <= code < 0x7F:
        return True
    if code <= 0xA0 or code > 0xFFFF or code == 0xFEFF:
        return False
    return unicodedata.category(ch)[0] not in "CZ"  # controls, surrogates, separators (U+2028/9)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar that every YAML 1.1 and 1.2 reader reads back as `text`."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif _printable(ch):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}  # YAML 1.1 reads these as bools


def _key(text: str) -> str:
    """A mapping key: plain when it can only be read as that string, else quoted."""
    return text if _PLAIN_KEY.fullmatch(text) and text.lower() not in _YAML_WORDS else _quoted(text)


def _scalar(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"config.yaml holds strings and integers, not {type(value).__name__}")
    return str(value) if isinstance(value, int) else _quoted(value)


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML of nested dicts and lists of strings and integers, every string quoted."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        head = f"{pad}{_key(str(key))}:"
        if isinstance(item, dict) and item:
            lines.append(head + "\n" + to_yaml(item, indent + 2))
        elif isinstance(item, list) and item:
            lines.append(head + "\n" + "\n".join(f"{pad}  - {_scalar(v)}" for v in item))
        elif isinstance(item, (dict, list)):
            lines.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
        else:
            lines.append(f"{head} {_scalar(item)}")
    return "\n".join(lines)


def write_sweep(plan: Plan, out: str | Path, force: bool = False) -> list[Path]:
    """Write OUT/Snakefile and OUT/config.yaml together (both or neither). An existing Snakefile
    is replaced only with `force`; the variants' finished outputs stay and are not rerun."""
    out = Path(out)
    targets = [out / "Snakefile", out / "config.yaml"]
    try:
        for target in targets:
            check_target(target, overwrite=force)
    except OutputError as exc:
        if not force and any(t.exists() for t in targets):
            raise SweepError(f"{out} already holds a sweep ({', '.join(t.name for t in targets if t.exists())}); "
                             f"pass --force to rewrite it (finished variants are kept and not rerun) or "
                             f"choose another --out") from None
        raise SweepError(str(exc)) from None
    header = ("# The plan of a sweep written by `dynv sweep` and read by the Snakefile beside it.\n"
              "# Editing it is fine: Snakemake reruns the jobs whose command changed.\n")
    with atomic_targets(targets, overwrite=force) as (snakefile, yaml):
        Path(snakefile).write_text(SNAKEFILE, encoding="utf-8")
        Path(yaml).write_text(header + to_yaml(config(plan)) + "\n", encoding="utf-8")
    return targets
