"""`dynv run`: simulate a spec on one stimulus; save its responses and a plot."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import add_spec_args, params, read_spec


def register(sub):
    s = sub.add_parser("run", help="simulate a spec on a stimulus and save responses and a plot",
                       description="simulate a spec on a stimulus and save responses and a plot")
    add_spec_args(s)
    s.add_argument("--image", help="an image file (default: a built-in grating)")
    s.add_argument("--weights", help="a checkpoint of dynv train (best.pt, last.pt; its --set values apply "
                                     "first) or a state dict saved with torch.save")
    s.add_argument("--partial-weights", action="store_true",
                   help="load only the tensors of --weights that fit (by name and shape); the rest stay seeded")
    s.add_argument("--out", help="output folder (default: runs/SPEC)")
    s.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    return s


def run(args) -> int:
    import torch

    from .. import checkpoint
    from ..pipeline import compile
    from ..util.params import recorded
    from ..plot import plot_responses
    from ..stimuli import builtin_image, load_image

    path, source = read_spec(args.file)
    weights = checkpoint.load(args.weights) if args.weights else None
    torch.manual_seed(args.seed)
    given = recorded(weights.params, args.weights) if weights else {}
    model = compile(source, given | params(args), file=str(path))
    if weights is not None:
        report = checkpoint.load_weights(model, weights.model, args.partial_weights, source=args.weights)
        if not report.strict:
            print(f"note: {report.loaded} of {report.total} tensors loaded from {args.weights}, "
                  f"{len(report.seeded)} keep their seeded values", file=sys.stderr)
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
    print_table(model, result)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".responses.pt.tmp"
    torch.save({"logits": result.logits, "responses": result.responses, "present": result.present,
                "dt": model.dt, "spec": str(path)}, tmp)
    tmp.replace(targets[0])
    plot_responses(result, targets[1], dt=model.dt, idle=model.idle, title=f"{model.program.model.name} ({path.name})")
    print(f"wrote {targets[0]} and {targets[1]}")
    return 0


def print_table(model, result) -> None:
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
