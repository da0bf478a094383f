"""`dynv sweep`: write a Snakemake workflow that trains a grid of variants, runs their experiments
and summarises them (`dynv sweep --summarize DIR` is the workflow's last job)."""
from __future__ import annotations

import argparse
import json
import sys

from . import experiment, train

# train's flags that the workflow sets itself, per variant
_OWN = {"help", "file", "out", "force", "resume", "no_progress", "set"}


def _train_actions() -> list[argparse.Action]:
    """dynv train's own options (whatever this version of it has), to be passed through verbatim."""
    p = argparse.ArgumentParser(add_help=False)
    s = train.register(p.add_subparsers())
    return [a for a in s._actions if a.dest not in _OWN and a.option_strings]


def register(sub):
    text = ("write DIR/Snakefile and DIR/config.yaml: a Snakemake workflow that trains every variant of a grid, "
            "runs its experiments and writes DIR/summary.csv and comparison plots")
    s = sub.add_parser("sweep", help=text, description=text + ". Run it with `snakemake --snakefile DIR/Snakefile "
                       "--cores N`, or on a cluster with any executor (`--executor slurm`) or profile.")
    s.add_argument("file", nargs="?", help="the .dyn spec")
    s.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                   help="one variant per value of a param (repeat for a grid: the Cartesian product)")
    from ..science.experiment.table import PROTOCOLS  # the one protocol table, torch-free

    s.add_argument("--experiment", action="append", metavar="PROTOCOL", choices=tuple(PROTOCOLS),
                   help=f"run this protocol on every trained variant (repeatable): {', '.join(PROTOCOLS)}")
    s.add_argument("--experiment-args", action="append", metavar="PROTOCOL=FLAGS",
                   help="dynv experiment flags for one protocol, e.g. 'duration=--levels 1,2,4 --n-images 8' "
                        "(repeatable)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="a param for every variant (repeatable)")
    s.add_argument("--out", help="the sweep's folder (required)")
    s.add_argument("--force", action="store_true", help="rewrite an existing DIR/Snakefile and config.yaml "
                                                        "(finished variants are kept and not rerun)")
    s.add_argument("--summarize", action="store_true", help=argparse.SUPPRESS)  # the workflow's summary job
    s.add_argument("--plan", help=argparse.SUPPRESS)
    group = s.add_argument_group("training (passed to dynv train for every variant)")
    for action in _train_actions():
        group._add_action(action)
    return s


def train_args(args) -> list[str]:
    """The dynv train flags the user gave, as words (defaults are left to dynv train)."""
    words: list[str] = []
    for action in _train_actions():
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        words += _words(action, value)
    return words


def _words(action: argparse.Action, value) -> list[str]:
    """One option's value as the words that give it again."""
    flag = action.option_strings[-1]
    if isinstance(action, argparse.BooleanOptionalAction):
        return [action.option_strings[0] if value else action.option_strings[-1]]
    if isinstance(action, (argparse._StoreConstAction, argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return [flag]
    if isinstance(action, argparse._CountAction):
        return [flag] * int(value)
    items = value if isinstance(action, argparse._AppendAction) else [value]
    out: list[str] = []
    for item in items:
        out += [flag, *map(str, item)] if isinstance(item, (list, tuple)) else [flag, str(item)]
    return out


def experiment_args(texts: list[str] | None, protocols: list[str]) -> dict[str, list[str]]:
    """`PROTOCOL=FLAGS` per protocol as words, checked against dynv experiment's own parser now."""
    import shlex

    from ..science.sweep import SweepError

    out: dict[str, list[str]] = {}
    for text in texts or []:
        protocol, eq, flags = text.partition("=")
        protocol = protocol.strip()
        if not eq or protocol not in protocols:
            raise SweepError(f"--experiment-args needs PROTOCOL=FLAGS for a protocol given by --experiment "
                             f"({', '.join(protocols) or 'none given'}), got '{text}'")
        try:
            words = shlex.split(flags)
        except ValueError as exc:
            raise SweepError(f"--experiment-args {protocol}: {exc}") from None
        _check_experiment_flags(protocol, words)
        out[protocol] = out.get(protocol, []) + words
    return out


def _check_experiment_flags(protocol: str, words: list[str]) -> None:
    from ..science.sweep import SweepError

    p = argparse.ArgumentParser(add_help=False)
    s = experiment.register(p.add_subparsers())
    s.exit_on_error = False
    try:
        parsed, unknown = s.parse_known_args([protocol, "spec.dyn", *words])
    except argparse.ArgumentError as exc:
        raise SweepError(f"--experiment-args {protocol}: {exc}") from None
    own = [f for f in ("--out", "--force", "--checkpoint") if f in words or any(w.startswith(f + "=") for w in words)]
    if unknown or own:
        what = unknown or own
        raise SweepError(f"--experiment-args {protocol}: dynv experiment {'has no' if unknown else 'gets from the sweep'} "
                         f"{' '.join(what)}")


def run(args) -> int:
    from ..science.sweep import SweepError, make_plan, parse_grid, write_sweep
    from ..util.params import parse_set

    try:
        if args.summarize:
            return _summarize(args)
        if not args.file or not args.out:
            raise SweepError("dynv sweep needs a spec and --out DIR, e.g. dynv sweep SPEC --grid tau=5ms,10ms "
                             "--out runs/sweep")
        protocols = list(dict.fromkeys(args.experiment or []))
        plan = make_plan(args.file, [parse_grid(g) for g in args.grid or []], protocols, parse_set(args.set),
                         train_args(args), experiment_args(args.experiment_args, protocols))
        _check_variants(plan)
        paths = write_sweep(plan, args.out, force=args.force)
    except SweepError as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {paths[0]} and {paths[1]}: {len(plan.variants)} variant{'s' * (len(plan.variants) != 1)} x "
          f"{len(plan.experiments)} protocol{'s' * (len(plan.experiments) != 1)}; run it with\n"
          f"  snakemake --snakefile {paths[0]} --cores 2")
    return 0


def _check_variants(plan) -> None:
    """Every variant passes `dynv check` now, not on a cluster node an hour from now."""
    from ..diagnostics import DynError
    from ..pipeline import check
    from ..util.source import read_spec_text

    text = read_spec_text(plan.spec)
    for variant in plan.variants:
        errors = [d for d in check(text, {**plan.sets, **variant.params}, file=str(plan.spec)) if d.is_error]
        if errors:
            print(f"dynv: variant {variant.label} does not compile:", file=sys.stderr)
            raise DynError(errors, text)


def _summarize(args) -> int:
    from ..science.sweep import SweepError
    from ..science.sweep.summary import summarize

    if not args.file or not args.plan:
        raise SweepError("--summarize needs the sweep's folder and --plan JSON (the Snakefile passes both)")
    try:
        plan = json.loads(args.plan)
    except ValueError as exc:
        raise SweepError(f"--plan is not JSON: {exc}") from None
    for path in summarize(args.file, plan):
        print(f"wrote {path}")
    return 0
