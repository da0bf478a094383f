"""`dynv`: check, compile, run, draw, train, probe and format `.dyn` specs, and serve editors.

One module per subcommand; each has `register(sub)` (its argparse parser) and `run(args)`.
"""
from __future__ import annotations

import argparse
import sys

from ..diagnostics import DynError
from . import check, compile, experiment, fmt, graph, lsp, run, train

COMMANDS = (check, compile, run, graph, experiment, train, fmt, lsp)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynv", description="Compile and run .dyn specs of recurrent "
                                                         "convolutional networks of the ventral stream.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub).set_defaults(fn=command.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except DynError as exc:
        print(exc.render(), file=sys.stderr)
        n = len(exc.errors)
        print(f"{args.file}: {n} error{'s' * (n != 1)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        model = sys.modules.get("dynvision_dsl.model")  # only a run that loaded the model (and torch) raises it
        if model is None or not isinstance(exc, model.NonFiniteError):
            raise
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
