"""`dynv`: check, compile, run, draw, train, probe and format `.dyn` specs, and serve editors.

One module per subcommand; each has `register(sub)` (its argparse parser) and `run(args)`.
"""
from __future__ import annotations

import argparse
import difflib
import sys

from ..diagnostics import DynError
from ..errors import CheckpointError, DataError, ImageError, NonFiniteError, UnsupportedSpecError  # torch-free: `dynv check` stays fast
from ..errors import DeviceError
from . import check, compile, experiment, explain, export, fmt, graph, import_, lsp, params, run, sweep, train

COMMANDS = (check, compile, run, graph, experiment, train, params, export, import_, fmt, lsp, sweep, explain)


def version() -> str:
    """The installed package's version, or the source tree's where it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("dynvision-dsl")
    except PackageNotFoundError:
        from .. import __version__
        return __version__


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynv", description="Compile and run .dyn specs of recurrent "
                                                         "convolutional networks of the ventral stream.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub).set_defaults(fn=command.run)
    return p


def misspelt(argv: list[str], p: argparse.ArgumentParser) -> str | None:
    """`dynv: unknown command 'chek' (did you mean 'check'?)` for a first word that is no subcommand."""
    first = next((a for a in argv if not a.startswith("-")), None)
    names = [c.__name__.rsplit(".", 1)[-1].rstrip("_") for c in COMMANDS]
    if first is None or first in names or argv.index(first) > 0:
        return None
    close = difflib.get_close_matches(first, names, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "one of " + ", ".join(names)
    if first.endswith(".dyn"):
        hint = f"a command comes first, e.g. {p.prog} check {first}"
    return f"{p.prog}: unknown command '{first}' ({hint}); see {p.prog} --help"


def main(argv: list[str] | None = None) -> int:
    from ..util.files import OutputError, Terminated, command_line, signals_as_exceptions

    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    wrong = misspelt(argv, p)
    if wrong is not None:
        print(wrong, file=sys.stderr)
        return 2
    args = p.parse_args(argv)
    args.command_line = command_line(argv)  # for provenance files
    try:
        with signals_as_exceptions():  # SIGTERM unwinds like Ctrl-C: no temporary file is left behind
            return args.fn(args)
    except (KeyboardInterrupt, Terminated) as exc:
        what = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"dynv: interrupted ({what}); nothing was left half-written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except DeviceError as exc:  # a device this machine lacks: a usage error, as argparse's are
        print(f"dynv: {exc}", file=sys.stderr)
        return 2
    except (OutputError, NonFiniteError, CheckpointError, ImageError, UnsupportedSpecError, DataError) as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
    except DynError as exc:
        print(exc.render(), file=sys.stderr)
        n = len(exc.errors)
        print(f"{args.file}: {n} error{'s' * (n != 1)}", file=sys.stderr)
        return 1
