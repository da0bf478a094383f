"""`dynv`: check, compile, run and draw `.dyn` specs from the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .diagnostics import DynError


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"dynv: --set needs NAME=VALUE, got '{pair}'")
        name, value = pair.split("=", 1)
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


if __name__ == "__main__":
    sys.exit(main())
