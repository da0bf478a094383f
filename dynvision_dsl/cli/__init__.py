"""`dynv`: check, compile, run, draw, train, probe and format `.dyn` specs, and serve editors.

One module per subcommand; each has `register(sub)` (its argparse parser) and `run(args)`.
"""
from __future__ import annotations

import argparse
import sys

from ..diagnostics import DynError
from . import check, compile, experiment, export, fmt, graph, import_, lsp, run, train

COMMANDS = (check, compile, run, graph, experiment, train, export, import_, fmt, lsp)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynv", description="Compile and run .dyn specs of recurrent "
                                                         "convolutional networks of the ventral stream.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub).set_defaults(fn=command.run)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..util.files import OutputError, Terminated, command_line, signals_as_exceptions

    args = parser().parse_args(argv)
    args.command_line = command_line(sys.argv[1:] if argv is None else list(argv))  # for provenance files
    try:
        with signals_as_exceptions():  # SIGTERM unwinds like Ctrl-C: no temporary file is left behind
            return args.fn(args)
    except (KeyboardInterrupt, Terminated) as exc:
        what = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"dynv: interrupted ({what}); nothing was left half-written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except OutputError as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
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
