"""`dynv`: check, compile, run and draw `.dyn` specs from the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .diagnostics import DynError


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise SystemExit(f"dynv: --set needs NAME=VALUE, got '{pair}'")
        out[name.strip()] = value.strip()
    return out


def _spec(path: str) -> tuple[Path, str]:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"dynv: no such file: {path}")
    return p, p.read_text()


def _report(diags, source: str) -> None:
    for d in diags:
        print(d.format(source), file=sys.stderr)


def cmd_check(args) -> int:
    from .pipeline import check

    path, source = _spec(args.file)
    diags = check(source, _params(args.set), file=str(path))
    _report(diags, source)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    print(f"{path}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return 1 if errors or (args.strict and warnings) else 0


def cmd_compile(args) -> int:
    from .emit import render, write_atomic
    from .pipeline import build

    path, source = _spec(args.file)
    program, diags = build(source, _params(args.set), file=str(path))
    _report(diags, source)
    try:
        write_atomic(args.output, render(program, spec_name=path.as_posix()), overwrite=args.force)
    except FileExistsError as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


def cmd_run(args) -> int:
    import torch

    from .pipeline import compile
    from .plot import plot_responses
    from .stimuli import builtin_image, load_image
    from .emit import write_atomic

    path, source = _spec(args.file)
    torch.manual_seed(args.seed)
    model = compile(source, _params(args.set), file=str(path))
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    out = Path(args.out or f"runs/{path.stem}")
    targets = [out / "responses.pt", out / "responses.png"]
    clash = [str(t) for t in targets if t.exists()]
    if clash and not args.force:
        print(f"dynv: {', '.join(clash)} exist; pass --force to replace them or choose --out", file=sys.stderr)
        return 1
    c, h, w = model.input_shape
    image = load_image(args.image, c, h, w) if args.image else builtin_image(c, h, w)
    with torch.no_grad():
        result = model.run(image.unsqueeze(0))
    _print_table(model, result)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".responses.pt.tmp"
    torch.save({"logits": result.logits, "responses": result.responses, "present": result.present,
                "dt": model.dt, "spec": str(path)}, tmp)
    tmp.replace(targets[0])
    plot_responses(result, targets[1], dt=model.dt, idle=model.idle, title=f"{model.program.model.name} ({path.name})")
    print(f"wrote {targets[0]} and {targets[1]}")
    return 0


def _print_table(model, result) -> None:
    rows = [("area", "shape", "first present", "mean |r|")]
    for area in model.areas:
        present = result.present[area]
        first = int(present.nonzero()[0]) if present.any() else None
        resp = result.responses[area][:, present] if present.any() else None
        mean = f"{resp.abs().mean().item():.4g}" if resp is not None else "-"
        when = f"step {first} ({first * model.dt:g} ms)" if first is not None else "silent"
        rows.append((area, "[" + ", ".join(map(str, model.area_shapes[area])) + "]", when, mean))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(col.ljust(widths[j]) for j, col in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    logits = result.logits[0, -1]
    print(f"readout at the last step: class {int(logits.argmax())} (logit {logits.max().item():.4g})")


def cmd_graph(args) -> int:
    from .pipeline import build
    from .plot import draw_graph

    path, source = _spec(args.file)
    program, diags = build(source, _params(args.set), file=str(path))
    _report(diags, source)
    out = Path(args.output)
    if out.suffix not in (".svg", ".png", ".dot"):
        print(f"dynv: the output must end in .svg, .png or .dot, got '{out.suffix}'", file=sys.stderr)
        return 1
    if out.exists() and not args.force:
        print(f"dynv: {out} exists; pass --force to replace it", file=sys.stderr)
        return 1
    draw_graph(program.graph, out)
    print(f"wrote {out}")
    return 0


def cmd_experiment(args) -> int:
    from .experiment import run_cli

    return run_cli(args)


def cmd_train(args) -> int:
    from .train import run_cli

    return run_cli(args)


PROTOCOLS = ("duration", "contrast", "interval", "noise")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynv", description="Compile and run .dyn specs of recurrent "
                                                         "convolutional networks of the ventral stream.")
    sub = p.add_subparsers(dest="command", required=True)

    def spec_cmd(name, help_text, fn):
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.add_argument("file", help="the .dyn spec")
        s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
        s.set_defaults(fn=fn)
        return s

    s = spec_cmd("check", "check a spec and print its diagnostics", cmd_check)
    s.add_argument("--strict", action="store_true", help="treat warnings as errors")
    s = spec_cmd("compile", "write a standalone PyTorch module for a spec", cmd_compile)
    s.add_argument("-o", "--output", required=True, help="the .py file to write")
    s.add_argument("--force", action="store_true", help="replace an existing file")
    s = spec_cmd("run", "simulate a spec on a stimulus and save responses and a plot", cmd_run)
    s.add_argument("--image", help="an image file (default: a built-in grating)")
    s.add_argument("--weights", help="a state dict saved with torch.save")
    s.add_argument("--out", help="output folder (default: runs/SPEC)")
    s.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    s = spec_cmd("graph", "draw the connectivity graph", cmd_graph)
    s.add_argument("-o", "--output", required=True, help="OUT.svg, OUT.png or OUT.dot")
    s.add_argument("--force", action="store_true", help="replace an existing file")

    s = sub.add_parser("experiment", help="probe a spec with a stimulus protocol; write a CSV and PNGs",
                       description="Probe a spec with one of DynVision's stimulus protocols and write a CSV of "
                                   "every measured value and a PNG per measure (one curve per --sweep variant).")
    s.add_argument("name", choices=PROTOCOLS, help="the protocol")
    s.add_argument("file", help="the .dyn spec")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
    s.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="one variant per value, drawn as one curve each (repeat for a grid)")
    s.add_argument("--checkpoint", help="weights from `dynv train` (a checkpoint or a state dict)")
    s.add_argument("--images", default="digits",
                   help="digits (default: the held-out split), folder:PATH (a seeded sample of "
                        "--n-images of its images), or an image file")
    s.add_argument("--n-images", type=int, default=32, help="how many images to average over (default 32)")
    s.add_argument("--levels", metavar="V1,V2,...",
                   help="the protocol's values (durations or gaps in steps, contrasts, SNRs)")
    s.add_argument("--intro", type=int, default=40,
                   help="blank steps before the first presentation, for the baseline to settle (default 40)")
    s.add_argument("--on", type=int, default=8, help="interval: steps of each presentation (default 8)")
    s.add_argument("--batch", type=int, default=32, help="images per forward pass (default 32)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, image choice and noise (default 0)")
    s.add_argument("--out", help="output folder (default: runs/experiment-NAME-SPEC)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    s.set_defaults(fn=cmd_experiment)

    s = spec_cmd("train", "train a spec on labelled images (cross-entropy at every present step, Adam)",
                 cmd_train)
    s.add_argument("--data", default="digits", help="digits (default) or folder:PATH (one sub-folder per class)")
    s.add_argument("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    s.add_argument("--batch", type=int, default=32, help="images per optimisation step, over all processes "
                                                       "(default 32)")
    s.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    s.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the images (default 0.2)")
    s.add_argument("--seed", type=int, default=0, help="seed of weights, split and shuffling (default 0)")
    s.add_argument("--out", help="run folder (default: runs/train-SPEC)")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--force", action="store_true", help="start afresh in an existing run folder, replacing it")
    s.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    from .model import NonFiniteError

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except NonFiniteError as exc:
        print(f"dynv: {exc}", file=sys.stderr)
        return 1
    except DynError as exc:
        print(exc.render(), file=sys.stderr)
        n = len(exc.errors)
        print(f"{args.file}: {n} error{'s' * (n != 1)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
