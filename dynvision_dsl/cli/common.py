"""What every spec subcommand shares: reading the spec, printing diagnostics, the common flags."""
from __future__ import annotations

import sys
from pathlib import Path

from ..util.params import parse_set
from ..util.source import read_spec_text


def add_spec_args(s) -> None:
    """The spec file and `--set` overrides, as every spec subcommand takes them."""
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")


def params(args) -> dict[str, str]:
    return parse_set(args.set)


def read_spec(path: str) -> tuple[Path, str]:
    """The spec's path and text; a missing, binary or unreadable file raises DynError naming it."""
    return Path(path), read_spec_text(path)


def report(diags, source: str) -> None:
    for d in diags:
        print(d.format(source), file=sys.stderr)


def compile_spec(source: str, given: dict, file: str):
    """`dd.compile`, its DynWarnings printed as diagnostics (see `spec_warnings_printed`)."""
    from ..pipeline import compile

    return spec_warnings_printed(source, lambda: compile(source, given, file=file))


def trained_model(args, path, source: str, partial: bool = False):
    """The spec compiled with `--weights` (a checkpoint of dynv train, whose params it was trained
    with come first, or a bare state dict) loaded and its recorded input normalisation set, as
    `dynv run` and `dynv export` take it; without --weights, the seeded model."""
    import torch

    from .. import checkpoint
    from ..science.data import recorded as recorded_normalization
    from ..util.params import recorded

    weights = checkpoint.load(args.weights) if args.weights else None
    torch.manual_seed(args.seed)
    given = recorded(weights.params, args.weights) if weights else {}
    model = compile_spec(source, given | params(args), str(path))
    if weights is None:
        return model
    report = checkpoint.load_weights(model, weights.model, partial, source=args.weights)
    if not report.strict:
        print(f"note: {report.loaded} of {report.total} tensors loaded from {args.weights}, "
              f"{len(report.seeded)} keep their seeded values", file=sys.stderr)
    model.input_transform = recorded_normalization(weights.extra)  # the images normalised as in training
    return model


def spec_warnings_printed(source: str, make):
    """make(), the spec's DynWarnings it issues printed as diagnostics (`file:line:col:
    warning[W001]: ...`) rather than as Python warnings; any other warning is issued again unchanged."""
    from ..diagnostics import DynWarning

    return warnings_printed(make, DynWarning,
                            lambda m: m.diagnostic.format(source) if isinstance(m, DynWarning) else None)


def warnings_printed(make, category, line):
    """make(), with the warnings it issues (`category` always shown) printed on stderr as
    line(message) where that gives a text; the others are issued again unchanged."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        value = make()
    for w in caught:
        text = line(w.message)
        if text is not None:
            print(text, file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value


def add_device_arg(g) -> None:
    """`--device` as run, experiment and train take it (parsed by util.device.resolve_device)."""
    g.add_argument("--device", metavar="DEVICE",
                   help="auto (default: cuda when available, else cpu), cpu, cuda or cuda:N")
